"""The LR-Recsys training pipeline: wiring only.

ingest + validate -> explanations (LLM engine) -> train + evaluate -> Feast features
(apply + materialize) and register + promote.
"""

from kfp import dsl

from components.explain import explain_op
from components.features import features_op
from components.ingest import ingest_op
from components.promote import promote_op
from components.train import train_op

PIPELINE_NAME = "lr-recsys-train"


@dsl.pipeline(
    name=PIPELINE_NAME, description="LLM contrastive explanations -> LR-Recsys DNN -> registry"
)
def lr_recsys_pipeline(
    dataset: str = "ml-100k",
    data_dir: str = "data",
    max_users: int = 20,
    max_per_user: int = 10,
    backend: str = "llamacpp",
    llm_model: str = "",
    max_tokens: int = 32,
    serving_candidates: int = 3,
    cache_path: str = "data/llm_cache.sqlite",
    model_name: str = "lr-recsys",
    task: str = "regression",
    seeds: str = "0,1",
    epochs: int = 100,
    ae_epochs: int = 100,
    tracking_uri: str = "sqlite:///runs/mlflow.db",
    margin: float = 0.0,
    feature_repo_dir: str = "runs/feature_repo",
):
    ingest = ingest_op(
        dataset=dataset, data_dir=data_dir, max_users=max_users, max_per_user=max_per_user
    )
    explain = explain_op(
        prepared=ingest.outputs["prepared"], cache_path=cache_path, backend=backend,
        llm_model=llm_model, max_tokens=max_tokens, serving_candidates=serving_candidates,
    )  # fmt: skip
    train = train_op(
        prepared=ingest.outputs["prepared"], explanations=explain.outputs["explanations"],
        model_name=model_name, task=task, seeds=seeds, epochs=epochs, ae_epochs=ae_epochs,
    )  # fmt: skip
    features_op(
        prepared=ingest.outputs["prepared"], explanations=explain.outputs["explanations"],
        model=train.outputs["model"], feature_repo_dir=feature_repo_dir,
    )  # fmt: skip
    promote_op(
        model=train.outputs["model"],
        prepared=ingest.outputs["prepared"],
        tracking_uri=tracking_uri,
        margin=margin,
    )
