"""Feast definitions (template layout: entities -> sources -> feature views -> versioned
FeatureServices). Thin: every name and object comes from ``lr_recsys.feature_store``."""

from pathlib import Path

from lr_recsys.feature_store import StoreConfig, definitions

(
    user,
    item,
    pair_explanations_source,
    user_history_source,
    item_profile_source,
    pair_explanations,
    user_history,
    item_profile,
    lr_recsys_v1,
) = definitions(StoreConfig(repo_dir=Path(__file__).parent))
