"""Explanations: the LLM engine over the budgeted pairs (``llm_pairs``, -1 = all; ``budget_policy``
even | random | uncertainty, the last with a first-pass twin trained on ``tuned_config``'s
settings; cached, resumable; in-process or a Ray Data actor pool), then its gate and quality
report."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def explain_op(
    prepared: Input[Dataset],
    cache_path: str,
    backend: str,
    llm_model: str,
    max_tokens: int,
    serving_candidates: int,
    executor: str,
    workers: int,
    llm_pairs: int,
    budget_seed: int,
    budget_policy: str,
    tuned_config: str,
    explanations: Output[Dataset],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import explain

    llm = {
        "backend": backend,
        "max_tokens": max_tokens,
        **({"model": llm_model} if llm_model else {}),
    }
    table = Path(explanations.path) / "explanations.parquet"  # the artifact is a directory
    summary = explain(
        Path(prepared.path), table, Path(cache_path), llm,
        serving_candidates=serving_candidates, executor=executor, workers=workers,
        llm_pairs=llm_pairs if llm_pairs >= 0 else None, budget_seed=budget_seed,
        budget_policy=budget_policy, tuned_config=tuned_config,
    )  # fmt: skip
    for key, value in summary.items():
        metrics.log_metric(key, value)
