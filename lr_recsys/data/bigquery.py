"""Interactions from a BigQuery table (``pip install 'lr-recsys[bigquery]'``).

The query is built from validated identifiers (never string-formatted user values) with values
passed as query parameters; the result is canonicalised and validated exactly like a file.
Real BigQuery cannot run on the CI machines: tests exercise this code with a double of the
client only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from lr_recsys import schema
from lr_recsys.data.tables import validate_interactions

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


class BigQuerySource(BaseModel):
    """Which table and columns hold the interactions."""

    model_config = ConfigDict(extra="forbid")

    project: str
    dataset: str
    table: str
    user_column: str = schema.USER_ID
    item_column: str = schema.ITEM_ID
    rating_column: str = schema.RATING
    timestamp_column: str = schema.TIMESTAMP
    since: str | None = None  # ISO timestamp: only interactions at or after it
    limit: int | None = None
    location: str | None = None

    @field_validator("dataset", "table", "user_column", "item_column", "rating_column", "timestamp_column")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"{v!r} is not a valid BigQuery identifier (letters, digits, underscores)")
        return v

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        if not _PROJECT.match(v):
            raise ValueError(f"{v!r} is not a valid Google Cloud project id")
        return v

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"limit must be positive, got {v}")
        return v

    @property
    def table_ref(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


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
    src: BigQuerySource, client: Any = None, rating_min: float = 1.0, rating_max: float = 5.0
) -> pd.DataFrame:
    """Run the query and return validated canonical interactions.

    Args:
        src: Table and column mapping.
        client: A ``google.cloud.bigquery.Client``; created for ``src.project`` when omitted.
        rating_min: Lowest valid rating.
        rating_max: Highest valid rating.
    """
    from google.cloud import bigquery

    client = client if client is not None else bigquery.Client(project=src.project, location=src.location)
    sql, params = build_query(src)
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params))
    frame = job.result().to_dataframe()
    if frame.empty:
        from lr_recsys.data.errors import DataError

        raise DataError(f"bigquery table {src.table_ref}: the query returned no rows")
    # TIMESTAMP columns arrive as datetimes: validate_interactions turns them into unix seconds
    log.info("bigquery %s: %d interactions", src.table_ref, len(frame))
    return validate_interactions(frame, f"bigquery:{src.table_ref}", rating_min, rating_max).reset_index(drop=True)
