"""Explanations: the table the models read (the LLM engine that writes it comes next)."""

from lr_recsys.explain.table import (
    attach_explanations,
    load_explanations,
    save_explanations,
    validate_explanations,
)

__all__ = ["attach_explanations", "load_explanations", "save_explanations", "validate_explanations"]
