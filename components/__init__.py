"""KFP v2 components, one per file; each body is one call into ``lr_recsys.steps``."""

BASE_IMAGE = "ghcr.io/lr-recsys/lr-recsys:0.1.0"  # infra/ builds it: this package installed
