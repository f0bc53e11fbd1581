"""Distilled explainer: learns the LLM pairs' embeddings, gives every other pair its vectors
(``explanation_source`` = llm | distilled), measures fidelity and the residual probe."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def distill_op(
    prepared: Input[Dataset],
    explanations: Input[Dataset],
    llm_embeddings: Input[Dataset],
    tuned_config: str,
    probe: bool,
    distiller: Output[Model],
    embeddings: Output[Dataset],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import distill

    summary = distill(
        Path(prepared.path), Path(explanations.path), Path(llm_embeddings.path),
        Path(distiller.path), Path(embeddings.path),
        probe_tasks=("regression",) if probe else (), tuned_config=tuned_config or None,
    )  # fmt: skip
    for key, value in summary.items():
        metrics.log_metric(key, value)
