"""DNN training (and baselines) over seeds, explanation features read through Feast."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def train_op(
    prepared: Input[Dataset],
    feature_store: Input[Artifact],
    encoder: Input[Model],
    distiller: Input[Model],
    models: str,
    task: str,
    seeds: str,
    epochs: int,
    tuned_config: str,
    model: Output[Model],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import train_evaluate

    names = [m.strip() for m in models.split(",") if m.strip()]
    summary = train_evaluate(
        Path(prepared.path),
        feature_store.metadata,  # repo_dir + online store profile written by features_op
        Path(model.path),
        names,
        task,
        [int(s) for s in seeds.split(",") if s.strip()],
        epochs,
        encoder_dir=Path(encoder.path),
        tuned_config=tuned_config or None,  # a TOML written by `lr-recsys tune` ("" = defaults)
        distiller_dir=Path(distiller.path),  # serving distils unexplained candidates with it
    )
    model.metadata.update({"model": names[0], "task": task})
    for key, value in summary["mean"].items():
        metrics.log_metric(f"test_{key}", value)
