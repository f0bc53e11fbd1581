"""Pipeline steps: each composes the core modules into one unit of work with file inputs and
outputs, so a KFP component (or any orchestrator) is a thin call into exactly one function here.

ingest (+ interactions gate) -> explain (LLM budget + explanations gate + quality) -> encode
(AutoEncoder + embeddings gate) -> distill (distilled explainer for every other pair + probe) ->
register_features (Feast apply + materialize) -> train_evaluate (the model and
its baselines, features through Feast) -> evaluate (+ predictions gate) -> explain_served (LLM
text for each serving user's top k under the new model, the explain queue) ->
register_and_promote.
"""

from lr_recsys.steps.data import SERVING_PAIRS, explain, ingest, ingest_config
from lr_recsys.steps.distill import distill
from lr_recsys.steps.features import encode, register_features
from lr_recsys.steps.register import register_and_promote
from lr_recsys.steps.served import explain_served
from lr_recsys.steps.train import evaluate, train_evaluate

__all__ = [
    "SERVING_PAIRS", "distill", "encode", "evaluate", "explain", "explain_served", "ingest", "ingest_config",
    "register_and_promote", "register_features", "train_evaluate",
]  # fmt: skip
