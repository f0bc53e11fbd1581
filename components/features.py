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
    feature_store: Output[Artifact],
    metrics: Output[Metrics],
):
    from pathlib import Path

    from lr_recsys.steps import register_features

    summary = register_features(Path(prepared.path), Path(embeddings.path), Path(feature_repo_dir))
    feature_store.metadata["repo_dir"] = feature_repo_dir  # training reads the features from here
    for key, value in summary.items():
        metrics.log_metric(key, value)
