"""The refresh pipeline: a day of new interactions without redoing the whole dataset (wiring only;
logic in ``lr_recsys.steps.refresh``).

champion (registry) + new interactions since the store's watermark -> features of the new pairs
(LLM for the budgeted new pairs, cache first; distilled for the rest; appended to the Feast
sources and materialised incrementally) -> fine-tune (or retrain) -> evaluation -> served text
(each serving user's top k, the service's explain queue) -> register + promote.
"""

from kfp import dsl

from components.evaluate import evaluate_op
from components.promote import promote_op
from components.refresh import champion_op, refresh_features_op, refresh_ingest_op, refresh_train_op
from components.served import refresh_served_op

REFRESH_NAME = "lr-recsys-refresh"


@dsl.pipeline(
    name=REFRESH_NAME, description="New interactions -> features -> fine-tune -> registry"
)
def refresh_pipeline(
    dataset: str = "ml-100k",
    data_dir: str = "data",
    max_users: int = 0,  # as the training run: the same users
    max_per_user: int = 0,
    bigquery_table: str = "",
    items_path: str = "",
    users_path: str = "",
    interactions_path: str = "",
    rating_min: float = 1.0,
    rating_max: float = 5.0,
    high_rating: float = 4.0,
    on_duplicate: str = "error",
    config_path: str = "",
    until: int = 0,  # as of this Unix time (0: every interaction there is now)
    since: int = -1,  # interactions after this Unix time are new (-1: the store's watermark)
    llm_pairs: int = 10,  # new pairs the LLM explains (-1: all); the rest are distilled
    budget_seed: int = 0,
    backend: str = "llamacpp",
    llm_model: str = "",
    max_tokens: int = 32,
    cache_path: str = "data/llm_cache.sqlite",
    mode: str = "finetune",  # finetune: the champion's weights, a few epochs; retrain: from scratch
    task: str = "regression",
    epochs: int = 3,
    seed: int = 0,
    tuned_config: str = "",
    serving_users: int = 0,  # users whose top serving_k get LLM text (0: all)
    serving_k: int = 10,
    candidate_cap: int = 100,  # the service's candidate generator size (ServeConfig.candidate_cap)
    explain_queue: str = "runs/explain_queue.sqlite",  # the service's queue, drained here ("": off)
    tracking_uri: str = "sqlite:///runs/mlflow.db",
    margin: float = 0.0,
    feature_repo_dir: str = "runs/feature_repo",
    online_store: str = "sqlite",
    redis_connection: str = "",
):
    champion = champion_op(tracking_uri=tracking_uri, alias="champion")
    ingest = refresh_ingest_op(
        dataset=dataset, data_dir=data_dir, max_users=max_users, max_per_user=max_per_user,
        bigquery_table=bigquery_table, items_path=items_path, users_path=users_path,
        interactions_path=interactions_path, rating_min=rating_min, rating_max=rating_max,
        high_rating=high_rating, on_duplicate=on_duplicate, config_path=config_path, until=until,
        since=since, feature_repo_dir=feature_repo_dir,
    )  # fmt: skip
    features = refresh_features_op(
        prepared=ingest.outputs["prepared"], champion=champion.outputs["champion"],
        feature_repo_dir=feature_repo_dir, online_store=online_store,
        redis_connection=redis_connection, tracking_uri=tracking_uri, cache_path=cache_path,
        backend=backend, llm_model=llm_model, max_tokens=max_tokens, llm_pairs=llm_pairs,
        budget_seed=budget_seed,
    )  # fmt: skip
    train = refresh_train_op(
        prepared=ingest.outputs["prepared"], feature_store=features.outputs["feature_store"],
        champion=champion.outputs["champion"], mode=mode, task=task, epochs=epochs, seed=seed,
        tuned_config=tuned_config,
    )  # fmt: skip
    evaluation = evaluate_op(model=train.outputs["model"])
    served = refresh_served_op(
        prepared=ingest.outputs["prepared"], model=train.outputs["model"],
        champion=champion.outputs["champion"],
        feature_store=features.outputs["feature_store"], cache_path=cache_path, backend=backend,
        llm_model=llm_model, max_tokens=max_tokens, serving_users=serving_users,
        serving_k=serving_k, candidate_cap=candidate_cap, explain_queue=explain_queue,
    )  # fmt: skip
    promote = promote_op(
        model=train.outputs["model"], evaluation=evaluation.outputs["evaluation"],
        feature_store=features.outputs["feature_store"], tracking_uri=tracking_uri, margin=margin,
    )  # fmt: skip
    promote.after(served)
