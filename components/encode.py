"""AutoEncoder + embeddings: fit on the training split's explanations, embed every pair, gate."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def encode_op(
    prepared: Input[Dataset],
    explanations: Input[Dataset],
    ae_epochs: int,
    encoder: Output[Model],
    embeddings: Output[Dataset],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import encode

    summary = encode(
        Path(prepared.path),
        Path(explanations.path) / "explanations.parquet",  # the artifact is a directory
        Path(encoder.path),
        Path(embeddings.path),
        ae_epochs,
    )
    for key, value in summary.items():
        metrics.log_metric(key, value)
