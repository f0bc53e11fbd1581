"""Explanations: the contrastive-explanation engine (prompts, backends, cache, runners) and the
explanation table the models read."""

from lr_recsys.explain.table import (
    attach_explanations,
    load_explanations,
    save_explanations,
    validate_explanations,
)

__all__ = ["attach_explanations", "load_explanations", "save_explanations", "validate_explanations"]
