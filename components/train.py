"""Train + evaluate: the DNN over seeds, with embedding and prediction gates."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def train_op(
    prepared: Input[Dataset],
    explanations: Input[Dataset],
    model_name: str,
    task: str,
    seeds: str,
    epochs: int,
    ae_epochs: int,
    model: Output[Model],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import train_evaluate

    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    summary = train_evaluate(
        Path(prepared.path),
        Path(explanations.path) / "explanations.parquet",  # the artifact is a directory
        Path(model.path),
        model_name,
        task,
        seed_list,
        epochs,
        ae_epochs,
    )
    model.metadata.update({"model": model_name, "task": task})
    for key, value in summary["mean"].items():
        metrics.log_metric(f"test_{key}", value)
