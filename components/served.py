"""Served text: rank each serving user's candidates with the new model, have the LLM explain
their top ``k`` (and the service's explain queue), load the texts into the online store."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def served_op(
    prepared: Input[Dataset],
    model: Input[Model],
    feature_store: Input[Artifact],
    cache_path: str,
    backend: str,
    llm_model: str,
    max_tokens: int,
    serving_users: int,
    serving_k: int,
    candidate_cap: int,
    explain_queue: str,
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import explain_served

    llm = {
        "backend": backend,
        "max_tokens": max_tokens,
        **({"model": llm_model} if llm_model else {}),
    }
    summary = explain_served(
        Path(prepared.path), Path(model.path), dict(feature_store.metadata), Path(cache_path),
        llm, users=serving_users, k=serving_k, candidate_cap=candidate_cap,
        queue_path=Path(explain_queue) if explain_queue else None,
    )  # fmt: skip
    for key, value in summary.items():
        metrics.log_metric(key, value)


@dsl.component(base_image=BASE_IMAGE)
def refresh_served_op(
    prepared: Input[Dataset],
    model: Input[Model],
    champion: Input[Model],
    feature_store: Input[Artifact],
    cache_path: str,
    backend: str,
    llm_model: str,
    max_tokens: int,
    serving_users: int,
    serving_k: int,
    candidate_cap: int,
    explain_queue: str,
    metrics: Output[Metrics],
):
    """As ``served_op``, and the champion's top k too: it keeps serving if the refreshed
    challenger is not promoted (both read the champion's AutoEncoder space)."""
    from pathlib import Path

    from lr_recsys.steps import explain_served

    llm = {
        "backend": backend,
        "max_tokens": max_tokens,
        **({"model": llm_model} if llm_model else {}),
    }
    summary = explain_served(
        Path(prepared.path), Path(model.path), dict(feature_store.metadata), Path(cache_path),
        llm, users=serving_users, k=serving_k, candidate_cap=candidate_cap,
        queue_path=Path(explain_queue) if explain_queue else None,
        also_models=(Path(champion.path),),
    )  # fmt: skip
    for key, value in summary.items():
        metrics.log_metric(key, value)
