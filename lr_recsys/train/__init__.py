"""Training: one loop for every model and task."""

from lr_recsys.train.loop import TrainResult, seed_everything, train

__all__ = ["TrainResult", "seed_everything", "train"]
