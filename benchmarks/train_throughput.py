"""Training throughput of LR-Recsys and every baseline on the real ml-100k training split.

Prints samples/s per model (with 1 and 2 torch threads for LR-Recsys) and the projected time of
the paper's 100 epochs; the goal is 100 LR-Recsys epochs in under 5 minutes on 2 cores. LR-Recsys
is timed with explanation vectors of the right shape (the network's cost does not depend on their
values); ``--full`` actually runs the 100 epochs.

    python benchmarks/train_throughput.py [--epochs 3] [--full]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from lr_recsys import schema
from lr_recsys.config import DataConfig, ModelConfig, TrainConfig
from lr_recsys.data import load_prepared
from lr_recsys.features import FeatureSpace, to_tensors
from lr_recsys.models import ModelInputs, build_model, explanation_source
from lr_recsys.train import train

GOAL_SECONDS = 300.0
MODELS = ("lr-recsys", "lr-recsys-noexp", "mf", "ncf", "sasrec", "din")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per model")
    parser.add_argument(
        "--full", action="store_true", help="also run 100 LR-Recsys epochs for real"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("LR_RECSYS_DATA_DIR", "data"))
    )
    args = parser.parse_args()

    prepared = load_prepared(DataConfig(data_dir=args.data_dir))
    space = FeatureSpace.build(prepared)
    rng = np.random.default_rng(0)
    splits = {}
    for s in (schema.SPLIT_TRAIN, schema.SPLIT_VAL):
        df = prepared.split(s)
        vec = (
            rng.standard_normal((len(df), 8), np.float32),
            rng.standard_normal((len(df), 8), np.float32),
        )
        splits[s] = to_tensors(df, space, vec)
    n_train = len(splits[schema.SPLIT_TRAIN])
    inputs = ModelInputs(space.n_users, space.n_items, tuple(space.context_sizes), 8)
    print(f"ml-100k training split: {n_train} examples, validation {len(splits[schema.SPLIT_VAL])}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs\n")
    print(
        f"{'model':<18}{'threads':>8}{'samples/s':>12}{'s/epoch':>10}{'100 epochs (s)':>16}{'vs 5-min goal':>15}"
    )
    rows = [(m, 1) for m in MODELS] + [("lr-recsys", 2)]
    for name, threads in rows:
        model = build_model(name, inputs, ModelConfig())
        assert explanation_source(name) in (None, "ae")
        cfg = TrainConfig(epochs=args.epochs, num_threads=threads, progress=False)
        result = train(
            model, splits[schema.SPLIT_TRAIN], splits[schema.SPLIT_VAL], schema.REGRESSION, cfg
        )
        per_epoch = result.seconds / args.epochs
        projected = per_epoch * 100
        print(
            f"{name:<18}{threads:>8}{result.samples_per_s:>12.0f}{per_epoch:>10.2f}{projected:>16.1f}"
            f"{projected / GOAL_SECONDS:>14.2f}x"
        )
    if args.full:
        model = build_model("lr-recsys", inputs, ModelConfig())
        start = time.perf_counter()
        train(
            model,
            splits[schema.SPLIT_TRAIN],
            splits[schema.SPLIT_VAL],
            schema.REGRESSION,
            TrainConfig(progress=True),
        )
        took = time.perf_counter() - start
        print(
            f"\nLR-Recsys, 100 epochs for real: {took:.1f} s ({took / GOAL_SECONDS:.2f}x of the 5-minute goal)"
        )
    print("\nprojected = measured seconds per epoch (training + validation scoring) x 100")


if __name__ == "__main__":
    main()
