"""Feature registration: AE embeddings + texts per pair, user histories, item texts -> Feast
(apply + materialize to the online store)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def features_op(
    prepared: Input[Dataset],
    explanations: Input[Dataset],
    model: Input[Model],
    feature_repo_dir: str,
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import register_features

    summary = register_features(
        Path(prepared.path),
        Path(explanations.path) / "explanations.parquet",  # the artifact is a directory
        Path(model.path),
        Path(feature_repo_dir),
    )
    for key, value in summary.items():
        metrics.log_metric(key, value)
