"""Ingest + validate: load the dataset (ml-100k, generic files, or BigQuery interactions with
item/user files), gate raw interactions, prepare (Sec. 5.1)."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def ingest_op(
    dataset: str,
    data_dir: str,
    max_users: int,
    max_per_user: int,
    bigquery_table: str,
    items_path: str,
    users_path: str,
    prepared: Output[Dataset],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.config import BigQuerySource, DataConfig
    from lr_recsys.steps import ingest

    cfg = DataConfig(
        dataset="bigquery" if bigquery_table else dataset,
        data_dir=Path(data_dir),
        max_users=max_users or None,
        max_per_user=max_per_user or None,
        items=Path(items_path) if items_path else None,
        users=Path(users_path) if users_path else None,
        bigquery=BigQuerySource.from_ref(bigquery_table) if bigquery_table else None,
    )
    for key, value in ingest(cfg, Path(prepared.path)).items():
        metrics.log_metric(key, value)
