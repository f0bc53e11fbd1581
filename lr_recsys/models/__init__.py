"""Models: one file per model over a shared base, looked up by name."""

from lr_recsys.models import din, lr_recsys_net, mf, ncf, sasrec  # noqa: F401  (registration)
from lr_recsys.models.base import (
    Batch,
    ModelInputs,
    RecModel,
    build_model,
    explanation_source,
    model_names,
    model_spec,
)
from lr_recsys.models.lr_recsys_net import LRRecsys, token_importance

BASELINES = ("mf", "ncf", "sasrec", "din")

__all__ = [
    "BASELINES",
    "Batch",
    "LRRecsys",
    "ModelInputs",
    "RecModel",
    "build_model",
    "explanation_source",
    "model_names",
    "model_spec",
    "token_importance",
]
