"""Feature registration: pair embeddings + texts, user histories, item texts -> Feast
(apply + materialize to the online store)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def features_op(
    prepared: Input[Dataset],
    embeddings: Input[Dataset],
    feature_repo_dir: str,
    online_store: str,
    redis_connection: str,
    tracking_uri: str,
    feature_store: Output[Artifact],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import register_features

    summary = register_features(
        Path(prepared.path), Path(embeddings.path), Path(feature_repo_dir),
        online=online_store, redis_connection=redis_connection or None, tracking_uri=tracking_uri,
    )  # fmt: skip
    # training reads the features through this store; serving is configured with the same values
    feature_store.metadata.update(
        {"repo_dir": feature_repo_dir, "online": online_store, "redis_connection": redis_connection,
         "model_version": summary["model_version"]}  # the FeatureService training reads
    )  # fmt: skip
    for key, value in summary.items():
        metrics.log_metric(key, value)
