"""BigQuery source: query construction and DataFrame handling, with a double of the client only
(real BigQuery is a paid cloud service that cannot run here)."""

from __future__ import annotations

import pandas as pd
import pytest
from google.cloud import bigquery
from pydantic import ValidationError

from lr_recsys import schema
from lr_recsys.data.bigquery import BigQuerySource, build_query, load_interactions
from lr_recsys.data.errors import DataError

SRC = BigQuerySource(
    project="my-project-1",
    dataset="shop",
    table="ratings",
    user_column="customer",
    item_column="sku",
    rating_column="stars",
    timestamp_column="ts",
)


class ClientDouble:
    """Stands in for google.cloud.bigquery.Client: records the query, returns a fixed frame."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.calls: list[tuple[str, bigquery.QueryJobConfig]] = []

    def query(self, sql, job_config=None):
        self.calls.append((sql, job_config))
        frame = self.frame

        class Job:
            def result(self):
                class Rows:
                    def to_dataframe(self):
                        return frame.copy()

                return Rows()

        return Job()


def test_query_maps_columns_and_parameterises_values():
    src = SRC.model_copy(update={"since": "2024-01-01T00:00:00Z", "limit": 1000})
    sql, params = build_query(src)
    assert "FROM `my-project-1.shop.ratings`" in sql
    assert (
        "CAST(`customer` AS STRING) AS user_id" in sql
        and "CAST(`stars` AS FLOAT64) AS rating" in sql
    )
    assert "WHERE `ts` >= @since" in sql and sql.endswith("LIMIT @limit")
    assert {(p.name, p.type_, p.value) for p in params} == {
        ("since", "TIMESTAMP", "2024-01-01T00:00:00Z"),
        ("limit", "INT64", 1000),
    }
    assert "2024" not in sql and "1000" not in sql  # values never formatted into the SQL


@pytest.mark.parametrize(
    ("field", "value"),
    [("table", "ratings; DROP TABLE x"), ("user_column", "a`b"), ("project", "X"), ("limit", 0)],
)
def test_bad_identifiers_and_values_are_rejected(field, value):
    with pytest.raises(ValidationError):
        BigQuerySource(**{**SRC.model_dump(), field: value})


def test_result_is_canonicalised_and_validated():
    ts = pd.to_datetime(["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"], utc=True)
    frame = pd.DataFrame(
        {
            schema.USER_ID: ["c1", "c2"],
            schema.ITEM_ID: ["s1", "s1"],
            schema.RATING: [5.0, 2.0],
            schema.TIMESTAMP: ts,
        }
    )
    client = ClientDouble(frame)
    out = load_interactions(SRC, client=client)
    assert out[schema.TIMESTAMP].tolist() == [1_704_067_200, 1_704_153_600]
    assert out[schema.USER_ID].tolist() == ["c1", "c2"]
    sql, job_config = client.calls[0]
    assert isinstance(job_config, bigquery.QueryJobConfig) and "ratings" in sql


def test_bad_rows_and_empty_results_fail_with_the_table_named():
    frame = pd.DataFrame(
        {
            schema.USER_ID: ["c1"],
            schema.ITEM_ID: ["s1"],
            schema.RATING: [9.0],
            schema.TIMESTAMP: [100],
        }
    )
    with pytest.raises(
        DataError, match=r"bigquery:my-project-1.shop.ratings: rating outside \[1.0, 5.0\]"
    ):
        load_interactions(SRC, client=ClientDouble(frame))
    with pytest.raises(DataError, match="returned no rows"):
        load_interactions(SRC, client=ClientDouble(frame.iloc[0:0]))


def test_duplicate_rows_follow_on_duplicate_through_load_tables(tmp_path, monkeypatch):
    """``data.on_duplicate`` reaches the BigQuery path too (the double returns one key twice)."""
    from lr_recsys.config import DataConfig
    from lr_recsys.data import load_tables

    frame = pd.DataFrame({schema.USER_ID: ["c1", "c1", "c2"], schema.ITEM_ID: ["s1", "s1", "s1"],
                          schema.RATING: [5.0, 2.0, 3.0], schema.TIMESTAMP: [100, 100, 100]})  # fmt: skip
    items = tmp_path / "items.csv"
    pd.DataFrame({schema.ITEM_ID: ["s1"], schema.TITLE: ["Kettle"]}).to_csv(items, index=False)
    monkeypatch.setattr(bigquery, "Client", lambda project, location=None: ClientDouble(frame))
    cfg = DataConfig(
        dataset="bigquery", items=items, bigquery=SRC.model_dump(), on_duplicate="mean"
    )
    inter = load_tables(cfg).interactions
    assert inter[schema.RATING].tolist() == [3.5, 3.0]
    with pytest.raises(
        DataError, match=r"bigquery:my-project-1\.shop\.ratings: duplicate .*data\.on_duplicate"
    ):
        load_tables(cfg.model_copy(update={"on_duplicate": "error"}))


def test_ingest_step_takes_interactions_from_bigquery(tmp_path, monkeypatch, tiny_tables):
    """The pipeline's ingest path with dataset 'bigquery': the real loader and validation, the
    client replaced by the double (BigQuery cannot be reached from here)."""
    from lr_recsys.config import DataConfig
    from lr_recsys.data import Prepared
    from lr_recsys.steps import ingest

    items = tmp_path / "items.csv"
    tiny_tables.items.to_csv(items, index=False)
    made: list[str] = []

    def client(project, location=None):
        made.append(project)
        return ClientDouble(tiny_tables.interactions)

    monkeypatch.setattr(bigquery, "Client", client)
    cfg = DataConfig(dataset="bigquery", items=items,
                     bigquery={"project": "my-project-1", "dataset": "shop", "table": "ratings"})  # fmt: skip
    counts = ingest(cfg, tmp_path / "prepared")
    assert made == ["my-project-1"]
    assert counts["examples"] == len(Prepared.load(tmp_path / "prepared").examples) > 0
    assert set(Prepared.load(tmp_path / "prepared").examples[schema.USER_ID]) <= set(
        tiny_tables.interactions[schema.USER_ID]
    )


def test_bigquery_dataset_without_items_names_what_is_missing():
    from lr_recsys.config import DataConfig
    from lr_recsys.data import DataError, load_tables

    with pytest.raises(DataError, match=r"needs data\.bigquery .* and a data\.items file"):
        load_tables(DataConfig(dataset="bigquery"))


def test_table_reference_is_parsed_and_checked():
    assert (
        BigQuerySource.from_ref("my-project-1.shop.ratings").table_ref
        == "my-project-1.shop.ratings"
    )
    with pytest.raises(ValueError, match="expected project.dataset.table"):
        BigQuerySource.from_ref("shop.ratings")
    with pytest.raises(ValidationError):
        BigQuerySource.from_ref("my-project-1.shop.rat`ings")
