"""The LR-Recsys training pipeline: wiring only.

ingest + validate -> explanations (LLM engine, budgeted pairs) -> AutoEncoder + embeddings ->
distilled explainer (every other pair) -> Feast features (apply + materialize) -> DNN + baselines
(features through Feast) -> evaluation -> served text (the LLM explains each serving user's top k
under the new model, and the service's explain queue) -> register + promote.
"""

from kfp import dsl

from components.distill import distill_op
from components.encode import encode_op
from components.evaluate import evaluate_op
from components.explain import explain_op
from components.features import features_op
from components.ingest import ingest_op
from components.promote import promote_op
from components.served import served_op
from components.train import train_op

PIPELINE_NAME = "lr-recsys-train"


@dsl.pipeline(
    name=PIPELINE_NAME, description="LLM contrastive explanations -> LR-Recsys DNN -> registry"
)
def lr_recsys_pipeline(
    dataset: str = "ml-100k",
    data_dir: str = "data",
    max_users: int = 0,  # 0: every user (the full dataset)
    max_per_user: int = 0,  # 0: every rating
    llm_pairs: int = 1000,  # LLM budget: pairs the LLM explains (-1: all); the rest are distilled
    budget_seed: int = 0,  # seed of the budget's sample (ties of every policy)
    budget_policy: str = "even",  # even (users, then items) | random | uncertainty (first pass)
    probe: bool = True,  # residual probe of the explanation embeddings in the distill step
    bigquery_table: str = "",  # project.dataset.table: interactions from BigQuery ([bigquery] extra)
    items_path: str = "",  # item (and user) files for the 'generic' and BigQuery sources
    users_path: str = "",
    interactions_path: str = "",  # your interactions file (local, gs:// or /gcs/): 'generic'
    rating_min: float = 1.0,  # the rating scale of the interactions
    rating_max: float = 5.0,
    high_rating: float = 4.0,  # classification label = rating >= high_rating
    on_duplicate: str = "error",  # same (user, item, timestamp) twice: error, keep_last or mean
    config_path: str = "",  # TOML/JSON whose [data] table gives defaults (as the CLI's --config)
    until: int = 0,  # as of this Unix time (0: all interactions); a refresh adds the later ones
    backend: str = "llamacpp",
    llm_model: str = "",
    max_tokens: int = 32,
    serving_candidates: int = 3,  # per user: popular unrated candidates given features
    serving_users: int = 0,  # users whose top serving_k get LLM text after training (0: all)
    serving_k: int = 10,  # items per serving user that must carry LLM text (the API's default k)
    candidate_cap: int = 100,  # the service's candidate generator size (ServeConfig.candidate_cap)
    explain_queue: str = "runs/explain_queue.sqlite",  # the service's queue, drained here ("": off)
    executor: str = "local",  # "ray": Ray Data actor pool (a KubeRay cluster via $RAY_ADDRESS)
    workers: int = 1,
    cache_path: str = "data/llm_cache.sqlite",
    models: str = "lr-recsys,lr-recsys-noexp,lr-recsys-content,mf",  # registered model first
    task: str = "regression",
    seeds: str = "0,1",
    epochs: int = 100,
    tuned_config: str = "",  # TOML from `lr-recsys tune` (per model and task hyperparameters)
    ae_epochs: int = 100,
    tracking_uri: str = "sqlite:///runs/mlflow.db",
    margin: float = 0.0,
    feature_repo_dir: str = "runs/feature_repo",
    online_store: str = "sqlite",  # "redis": the production online store
    redis_connection: str = "",  # host:port when online_store is "redis"
):
    ingest = ingest_op(
        dataset=dataset, data_dir=data_dir, max_users=max_users, max_per_user=max_per_user,
        bigquery_table=bigquery_table, items_path=items_path, users_path=users_path,
        interactions_path=interactions_path, rating_min=rating_min, rating_max=rating_max,
        high_rating=high_rating, on_duplicate=on_duplicate, config_path=config_path, until=until,
    )  # fmt: skip
    explain = explain_op(
        prepared=ingest.outputs["prepared"], cache_path=cache_path, backend=backend,
        llm_model=llm_model, max_tokens=max_tokens, serving_candidates=serving_candidates,
        executor=executor, workers=workers, llm_pairs=llm_pairs, budget_seed=budget_seed,
        budget_policy=budget_policy, tuned_config=tuned_config,
    )  # fmt: skip
    encode = encode_op(
        prepared=ingest.outputs["prepared"], explanations=explain.outputs["explanations"],
        ae_epochs=ae_epochs,
    )  # fmt: skip
    distill = distill_op(
        prepared=ingest.outputs["prepared"], explanations=explain.outputs["explanations"],
        llm_embeddings=encode.outputs["embeddings"], tuned_config=tuned_config, probe=probe,
    )  # fmt: skip
    features = features_op(
        prepared=ingest.outputs["prepared"], embeddings=distill.outputs["embeddings"],
        feature_repo_dir=feature_repo_dir, online_store=online_store,
        redis_connection=redis_connection, tracking_uri=tracking_uri,
    )  # fmt: skip
    train = train_op(
        prepared=ingest.outputs["prepared"], feature_store=features.outputs["feature_store"],
        encoder=encode.outputs["encoder"], distiller=distill.outputs["distiller"], models=models,
        task=task, seeds=seeds, epochs=epochs, tuned_config=tuned_config,
    )  # fmt: skip
    evaluation = evaluate_op(model=train.outputs["model"])
    served = served_op(
        prepared=ingest.outputs["prepared"], model=train.outputs["model"],
        feature_store=features.outputs["feature_store"], cache_path=cache_path, backend=backend,
        llm_model=llm_model, max_tokens=max_tokens, serving_users=serving_users,
        serving_k=serving_k, candidate_cap=candidate_cap, explain_queue=explain_queue,
    )  # fmt: skip
    promote = promote_op(
        model=train.outputs["model"], evaluation=evaluation.outputs["evaluation"],
        feature_store=features.outputs["feature_store"], tracking_uri=tracking_uri, margin=margin,
    )  # fmt: skip
    promote.after(served)  # the texts are online before the service can pick the version up
