"""LR-Recsys: contrastive LLM explanations as features for a recommendation DNN.

The package is the core: every adapter (CLI, KFP components, Ray Serve) calls into it.
"""

__version__ = "0.1.0"
