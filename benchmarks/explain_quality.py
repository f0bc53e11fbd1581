"""The explanation-quality report of a table, with the residual probe for both tasks.

    python benchmarks/explain_quality.py --table benchmarks/data/ml100k_llm1000_attributes.parquet \\
        [--variant attributes] [--tuned-config configs/tuned/ml-100k.toml] [--out report.json]

Text metrics (distinct sentences, top-sentence share, attribute mentions over the whole sentence
and the model-written continuation, flags) and, per task, the residual probe: the no-explanation
twin trained on the training split, a ridge/logistic probe on the AutoEncoder embeddings of the
validation split's LLM pairs (out of fold), lift with a paired bootstrap 95% interval and a
permuted-embedding control. Prints the markdown the README shows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from lr_recsys import schema
from lr_recsys.config import AEConfig, DataConfig, ModelConfig, TrainConfig
from lr_recsys.data import load_prepared
from lr_recsys.explain.quality import format_quality, residual_probe, text_quality
from lr_recsys.explain.table import load_explanations
from lr_recsys.train.experiment import fit_ae_vectors
from lr_recsys.tuned import configs_for, read_tuned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--variant", default="attributes")
    parser.add_argument("--tuned-config", type=Path, default=Path("configs/tuned/ml-100k.toml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    prepared = load_prepared(DataConfig(data_dir=args.data_dir))
    table = load_explanations(args.table)  # validated; the canonical columns only
    raw = pd.read_parquet(args.table) if args.table.suffix == ".parquet" else table
    report = text_quality(raw if "flags" in raw.columns else table, prepared, variant=args.variant)
    frames = {s: prepared.split(s) for s in schema.SPLITS}
    _, ae, vectors, _ = fit_ae_vectors(frames, table, AEConfig(progress=False))
    tuned = read_tuned(args.tuned_config)
    report["probe"] = {}
    for task in schema.TASKS:
        m, t = configs_for(
            "lr-recsys-noexp", task, ModelConfig(), TrainConfig(progress=False), tuned
        )
        report["probe"][task] = residual_probe(prepared, vectors, task, m, t)
    report["autoencoder"] = ae
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(format_quality(report))
    print(f"\n{report['seconds']} s (AutoEncoder {ae})")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
