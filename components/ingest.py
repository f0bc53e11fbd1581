"""Ingest + validate: load the dataset, gate raw interactions, prepare (Sec. 5.1)."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def ingest_op(
    dataset: str,
    data_dir: str,
    max_users: int,
    max_per_user: int,
    prepared: Output[Dataset],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.config import DataConfig
    from lr_recsys.steps import ingest

    cfg = DataConfig(
        dataset=dataset,
        data_dir=Path(data_dir),
        max_users=max_users or None,
        max_per_user=max_per_user or None,
    )
    for key, value in ingest(cfg, Path(prepared.path)).items():
        metrics.log_metric(key, value)
