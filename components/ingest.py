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
    interactions_path: str,
    rating_min: float,
    rating_max: float,
    high_rating: float,
    on_duplicate: str,
    config_path: str,
    until: int,
    prepared: Output[Dataset],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import ingest, ingest_config

    cfg = ingest_config(
        config_path, dataset=dataset, data_dir=data_dir, max_users=max_users,
        max_per_user=max_per_user, bigquery_table=bigquery_table,
        interactions_path=interactions_path, items_path=items_path, users_path=users_path,
        rating_min=rating_min, rating_max=rating_max, high_rating=high_rating,
        on_duplicate=on_duplicate, until=until,
    )  # fmt: skip
    for key, value in ingest(cfg, Path(prepared.path)).items():
        metrics.log_metric(key, value)
