"""Text encoders turning explanations into vectors: the paper's AutoEncoder and, for Ablation 2,
a pretrained sentence encoder."""

from lr_recsys.encoder.autoencoder import ExplanationEncoder, TextAutoEncoder
from lr_recsys.encoder.vocab import Vocabulary, tokenize

__all__ = ["ExplanationEncoder", "TextAutoEncoder", "Vocabulary", "tokenize"]
