"""Interactions from a BigQuery table (``pip install 'lr-recsys[bigquery]'``).

The query is built from validated identifiers (never string-formatted user values) with values
passed as query parameters; the result is canonicalised and validated exactly like a file.
Real BigQuery cannot run on the CI machines: tests exercise this code with a double of the
client only.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from lr_recsys import schema
from lr_recsys.config import BigQuerySource, OnDuplicate
from lr_recsys.data.tables import validate_interactions

log = logging.getLogger(__name__)

__all__ = ["BigQuerySource", "build_query", "load_interactions"]


def build_query(src: BigQuerySource) -> tuple[str, list[Any]]:
    """SQL and query parameters selecting the canonical interaction columns."""
    from google.cloud import bigquery

    sql = (
        f"SELECT CAST(`{src.user_column}` AS STRING) AS {schema.USER_ID}, "
        f"CAST(`{src.item_column}` AS STRING) AS {schema.ITEM_ID}, "
        f"CAST(`{src.rating_column}` AS FLOAT64) AS {schema.RATING}, "
        f"`{src.timestamp_column}` AS {schema.TIMESTAMP} "
        f"FROM `{src.table_ref}`"
    )
    params: list[Any] = []
    if src.since is not None:
        sql += f" WHERE `{src.timestamp_column}` >= @since"
        params.append(bigquery.ScalarQueryParameter("since", "TIMESTAMP", src.since))
    sql += f" ORDER BY {schema.USER_ID}, {schema.TIMESTAMP}"
    if src.limit is not None:
        sql += " LIMIT @limit"
        params.append(bigquery.ScalarQueryParameter("limit", "INT64", src.limit))
    return sql, params


def load_interactions(
    src: BigQuerySource,
    client: Any = None,
    rating_min: float = 1.0,
    rating_max: float = 5.0,
    on_duplicate: OnDuplicate = "error",
) -> pd.DataFrame:
    """Run the query and return validated canonical interactions.

    Args:
        src: Table and column mapping.
        client: A ``google.cloud.bigquery.Client``; created for ``src.project`` when omitted.
        rating_min: Lowest valid rating.
        rating_max: Highest valid rating.
        on_duplicate: Rows sharing a (user_id, item_id, timestamp) key: ``error``,
            ``keep_last`` (the last such row the query returns; BigQuery orders ties in no
            fixed order) or ``mean`` (one row with their mean rating).
    """
    from google.cloud import bigquery

    client = (
        client
        if client is not None
        else bigquery.Client(project=src.project, location=src.location)
    )
    sql, params = build_query(src)
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params))
    frame = job.result().to_dataframe()
    if frame.empty:
        from lr_recsys.data.errors import DataError

        raise DataError(f"bigquery table {src.table_ref}: the query returned no rows")
    # TIMESTAMP columns arrive as datetimes: validate_interactions turns them into unix seconds
    log.info("bigquery %s: %d interactions", src.table_ref, len(frame))
    where = f"bigquery:{src.table_ref}"
    return validate_interactions(frame, where, rating_min, rating_max, on_duplicate).reset_index(
        drop=True
    )
