"""Text AutoEncoder (paper Sec. 3.4.2, Appendix A.1, Eq. 2-3 and 25).

Each explanation is tokenised into at most 50 words (right-padded), every word is mapped to a
learned 8-d embedding and the 50 x 8 matrix is flattened into a 400-d vector. An MLP
400 -> 64 -> 8 -> 64 -> 400 reconstructs it; each of the 50 reconstructed 8-d slots is scored
against the word-embedding table and a per-position softmax over the vocabulary gives the
reconstruction distribution, trained with cross-entropy. The 8-d bottleneck is the explanation
embedding fed to the DNN.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from lr_recsys.config import AEConfig
from lr_recsys.encoder.vocab import Vocabulary

log = logging.getLogger(__name__)


class TextAutoEncoder(nn.Module):
    """The AutoEncoder network; see the module docstring."""

    def __init__(self, vocab_size: int, cfg: AEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        flat = cfg.maxlen * cfg.word_dim  # 400
        self.word_emb = nn.Embedding(vocab_size, cfg.word_dim)
        self.encoder = nn.Sequential(
            nn.Linear(flat, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.bottleneck)
        )
        self.decoder = nn.Sequential(
            nn.Linear(cfg.bottleneck, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, flat)
        )

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, maxlen) word ids -> (B, bottleneck) embedding."""
        return self.encoder(self.word_emb(ids).flatten(1))  # (B, 400) -> (B, 8)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (per-position vocabulary logits (B, maxlen, V), embedding (B, bottleneck))."""
        z = self.encode(ids)
        recon = self.decoder(z).view(-1, self.cfg.maxlen, self.cfg.word_dim)  # (B, 50, 8)
        return recon @ self.word_emb.weight.T, z  # (B, 50, V)


def _optimizer(model: nn.Module, cfg: AEConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(model.parameters(), lr=cfg.lr)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr)


class ExplanationEncoder:
    """Vocabulary + trained AutoEncoder: text in, 8-d vectors out."""

    def __init__(self, vocab: Vocabulary, model: TextAutoEncoder) -> None:
        self.vocab = vocab
        self.model = model
        self.cfg = model.cfg

    @classmethod
    def fit(
        cls, texts: list[str], cfg: AEConfig | None = None
    ) -> tuple[ExplanationEncoder, dict[str, float]]:
        """Build the vocabulary from ``texts`` (training-split explanations, positive and negative
        together) and train the AutoEncoder on them.

        Returns:
            The encoder and its reconstruction metrics on ``texts``.
        """
        cfg = cfg or AEConfig()
        if not texts:
            raise ValueError("cannot train the AutoEncoder on an empty list of explanations")
        torch.manual_seed(cfg.seed)
        vocab = Vocabulary.build(texts, cfg.min_count)
        ids = torch.from_numpy(vocab.encode(texts, cfg.maxlen))
        model = TextAutoEncoder(len(vocab), cfg)
        opt = _optimizer(model, cfg)
        gen = torch.Generator().manual_seed(cfg.seed)
        bar = tqdm(range(cfg.epochs), desc="autoencoder", disable=not cfg.progress, leave=False)
        for _ in bar:
            model.train()
            perm = torch.randperm(len(ids), generator=gen)
            total = 0.0
            for s in range(0, len(ids), cfg.batch_size):
                batch = ids[perm[s : s + cfg.batch_size]]
                logits, _ = model(batch)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(batch)
            bar.set_postfix(loss=f"{total / len(ids):.4f}")
        enc = cls(vocab, model)
        metrics = enc.reconstruction_metrics(texts)
        log.info("autoencoder: vocab %d, %s", len(vocab), metrics)
        return enc, metrics

    @torch.no_grad()
    def reconstruction_metrics(self, texts: list[str], batch_size: int = 2048) -> dict[str, float]:
        """Token accuracy over real words (padding excluded) and over all 50 positions, and the
        mean cross-entropy."""
        self.model.eval()
        ids = torch.from_numpy(self.vocab.encode(texts, self.cfg.maxlen))
        correct_words = words = correct_all = 0
        ce = 0.0
        for s in range(0, len(ids), batch_size):
            batch = ids[s : s + batch_size]
            logits, _ = self.model(batch)
            pred = logits.argmax(-1)
            real = batch != 0
            correct_words += int(((pred == batch) & real).sum())
            words += int(real.sum())
            correct_all += int((pred == batch).sum())
            ce += float(
                F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), batch.reshape(-1), reduction="sum"
                )
            )
        n = ids.numel()
        return {
            "token_accuracy": correct_words / max(words, 1),
            "position_accuracy": correct_all / max(n, 1),
            "cross_entropy": ce / max(n, 1),
        }

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 4096) -> np.ndarray:
        """Texts -> (N, bottleneck) float32 embeddings."""
        self.model.eval()
        ids = torch.from_numpy(self.vocab.encode(texts, self.cfg.maxlen))
        out = [self.model.encode(ids[s : s + batch_size]) for s in range(0, len(ids), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.cfg.bottleneck), np.float32)

    def save(self, directory: Path) -> None:
        """Write ``weights.safetensors``, ``vocab.json`` and ``config.json`` (no pickle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in self.model.state_dict().items()},
            directory / "weights.safetensors",
        )
        self.vocab.save(directory / "vocab.json")
        (directory / "config.json").write_text(json.dumps(asdict(self.cfg)))

    @classmethod
    def load(cls, directory: Path) -> ExplanationEncoder:
        """Load an encoder written by ``save``."""
        directory = Path(directory)
        for name in ("weights.safetensors", "vocab.json", "config.json"):
            if not (directory / name).exists():
                raise FileNotFoundError(f"autoencoder directory {directory} lacks {name}")
        cfg = AEConfig(**json.loads((directory / "config.json").read_text()))
        vocab = Vocabulary.load(directory / "vocab.json")
        model = TextAutoEncoder(len(vocab), cfg)
        model.load_state_dict(load_file(directory / "weights.safetensors"))
        return cls(vocab, model)
