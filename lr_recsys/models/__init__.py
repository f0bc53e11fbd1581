"""Models: one file per model over a shared base, looked up by name."""

from lr_recsys.models import bias, din, lr_recsys_net, mf, ncf, sasrec  # noqa: F401  (registration)
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

BASELINES = ("mf", "ncf", "sasrec", "din")  # the neural baselines (best baseline = best of these)
BIAS = "bias"  # the floor every comparison reports: mu + b_u + b_i with L2 shrinkage

__all__ = [
    "BASELINES",
    "BIAS",
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
