"""Register (MLflow challenger) and promote through the gate (champion if better)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def promote_op(
    model: Input[Model],
    evaluation: Input[Dataset],
    feature_store: Input[Artifact],
    tracking_uri: str,
    margin: float,
    metrics: Output[Metrics],
) -> str:
    from pathlib import Path

    from lr_recsys.steps import register_and_promote

    decision = register_and_promote(
        Path(model.path), Path(evaluation.path), tracking_uri, margin, dict(feature_store.metadata)
    )
    metrics.log_metric("promoted", float(decision["promoted"]))
    metrics.log_metric("version", float(decision["version"]))
    return decision["reason"]
