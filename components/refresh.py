"""Refresh components: the champion's artifact, the new interactions, their features (LLM for
the budgeted new pairs, distilled for the rest, appended + materialised incrementally) and the
fine-tuned (or retrained) challenger."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def champion_op(tracking_uri: str, alias: str, champion: Output[Model]):
    """Download the model version ``alias`` points at (weights, bundle, encoders)."""
    import shutil
    import tempfile
    from pathlib import Path

    from lr_recsys.registry import RegistryConfig, download_alias

    with tempfile.TemporaryDirectory() as tmp:
        version, directory, _ = download_alias(RegistryConfig(tracking_uri=tracking_uri), alias, Path(tmp))  # fmt: skip
        shutil.copytree(directory, champion.path, dirs_exist_ok=True)
    champion.metadata["version"] = version


@dsl.component(base_image=BASE_IMAGE)
def refresh_ingest_op(
    dataset: str, data_dir: str, max_users: int, max_per_user: int, bigquery_table: str,
    items_path: str, users_path: str, interactions_path: str, rating_min: float,
    rating_max: float, high_rating: float, on_duplicate: str, config_path: str, until: int,
    since: int, feature_repo_dir: str, prepared: Output[Dataset], metrics: Output[Metrics],
):  # fmt: skip
    from pathlib import Path

    from lr_recsys.feature_store import StoreConfig, read_watermark
    from lr_recsys.steps import ingest_config
    from lr_recsys.steps.refresh import refresh_ingest

    cfg = ingest_config(
        config_path, dataset=dataset, data_dir=data_dir, max_users=max_users,
        max_per_user=max_per_user, bigquery_table=bigquery_table,
        interactions_path=interactions_path, items_path=items_path, users_path=users_path,
        rating_min=rating_min, rating_max=rating_max, high_rating=high_rating,
        on_duplicate=on_duplicate, until=until,
    )  # fmt: skip
    start = since if since >= 0 else read_watermark(StoreConfig(repo_dir=Path(feature_repo_dir)))
    for key, value in refresh_ingest(cfg, Path(prepared.path), start).items():
        metrics.log_metric(key, value)


@dsl.component(base_image=BASE_IMAGE)
def refresh_features_op(
    prepared: Input[Dataset], champion: Input[Model], feature_repo_dir: str, online_store: str,
    redis_connection: str, tracking_uri: str, cache_path: str, backend: str, llm_model: str,
    max_tokens: int, llm_pairs: int, budget_seed: int, feature_store: Output[Artifact],
    metrics: Output[Metrics],
):  # fmt: skip
    import json
    from pathlib import Path

    from lr_recsys.steps.refresh import refresh_features

    store = {"repo_dir": feature_repo_dir, "online": online_store, "redis_connection": redis_connection}  # fmt: skip
    llm = {"backend": backend, "max_tokens": max_tokens, **({"model": llm_model} if llm_model else {})}  # fmt: skip
    summary = refresh_features(
        Path(prepared.path), store, Path(champion.path), Path(cache_path), llm,
        llm_pairs=llm_pairs if llm_pairs >= 0 else None, budget_seed=budget_seed,
        tracking_uri=tracking_uri,
    )  # fmt: skip
    # the LLM that explained the new pairs and its budget, as JSON (metadata numbers become floats)
    lineage = json.dumps(summary.pop("llm_lineage"))
    feature_store.metadata.update({**store, "model_version": summary["model_version"], "llm_lineage": lineage})  # fmt: skip
    for key, value in summary.items():
        metrics.log_metric(key, value)


@dsl.component(base_image=BASE_IMAGE)
def refresh_train_op(
    prepared: Input[Dataset], feature_store: Input[Artifact], champion: Input[Model], mode: str,
    task: str, epochs: int, seed: int, tuned_config: str, model: Output[Model],
    metrics: Output[Metrics],
):  # fmt: skip
    from pathlib import Path

    from lr_recsys.steps.refresh import refresh_train

    summary = refresh_train(
        Path(prepared.path), dict(feature_store.metadata), Path(champion.path), Path(model.path),
        mode, task, epochs, seed, tuned_config or None,
    )  # fmt: skip
    model.metadata.update({"model": summary["model"], "task": task, "mode": mode})
    for key, value in summary["mean"].items():
        metrics.log_metric(f"test_{key}", value)
