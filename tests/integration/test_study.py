"""``lr-recsys study`` on a small real run: every report section, embedded images that decode,
attention shares summing to 1, and a stopped study resuming where it stopped."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from lr_recsys.cli import main
from tests.conftest import real_data_dir

ROOT = Path(__file__).parents[2]

CONFIG = """
out_dir = "{out}"
docs_dir = "{out}/docs"
docs_figures = ["main", "uncertainty_gain"]
[compare]
tasks = ["regression", "classification"]
seeds = [0, 1]
explanations = "{root}/benchmarks/data/ml100k_u200x10_explanations.parquet"
[compare.data]
dataset = "ml-100k"
data_dir = "{data}"
max_users = 200
max_per_user = 10
[compare.train]
epochs = 2
progress = false
[compare.ae]
epochs = 3
progress = false
[explain]
variant = "contrastive"   # the base table's variant: its rows are reused
cache_path = "{out}/llm_cache.sqlite"
[explain.llm]
n_threads = 1

[[sections]]
name = "main"
title = "Main comparison"
models = ["lr-recsys", "mf", "lr-recsys-noexp"]
[[sections]]
name = "ablations"
title = "Ablations"
models = ["lr-recsys", "lr-recsys-pos", "lr-recsys-ncf", "lr-recsys-llm", "lr-recsys-distilled",
          "lr-recsys-content", "lr-recsys-raw", "lr-recsys-noexp"]
[[sections]]
name = "curve"
kind = "curve"
title = "Learning efficiency"
models = ["lr-recsys", "lr-recsys-noexp"]
train_fractions = [0.5, 1.0]
[[sections]]
name = "variants"
kind = "variants"
title = "Explanation variants"
variants = ["contrastive", "positive_only", "no_profile"]
variant_pairs = 4

[analysis]
insight_items = 3
uncertainty_bins = 2
"""

SECTIONS = ["main-comparison", "ablations", "learning-efficiency", "explanation-variants",
            "attention-analysis", "per-item-insights", "uncertainty-vs-gain"]  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("study")
    cfg = tmp / "study.toml"
    cfg.write_text(CONFIG.format(out=tmp / "out", root=ROOT, data=real_data_dir()))
    assert main(["study", "--config", str(cfg), "--no-progress"]) == 0
    return cfg, tmp / "out"


def test_report_holds_every_section_with_decodable_figures(study):
    _, out = study
    page = (out / "report.html").read_text()
    for anchor in SECTIONS:
        assert f'id="{anchor}"' in page, anchor
    images = re.findall(r'<img src="data:image/(png|svg\+xml);base64,([^"]+)"', page)
    assert len(images) >= 8  # comparison x2, curve, variants, attention x4, uncertainty
    for kind, data in images:
        raw = base64.b64decode(data, validate=True)
        assert raw.startswith(b"\x89PNG\r\n\x1a\n") if kind == "png" else b"<svg" in raw[:200]
    assert 'src="figures/' not in page  # self-contained: nothing left to fetch
    for stem in ("main", "uncertainty_gain"):  # README's copies
        copy = (out / "docs" / f"{stem}.png").read_bytes()
        assert copy == (out / "figures" / f"{stem}.png").read_bytes()
    md = (out / "report.md").read_text()
    assert "lr-recsys-raw" in md and "lr-recsys-content" in md and "| bias |" in md
    assert "no_profile (lr-recsys)" in md and "positive_only (lr-recsys-pos)" in md


def test_attention_shares_sum_to_one_and_insights_come_from_real_texts(study):
    _, out = study
    doc = json.loads((out / "report.json").read_text())
    for task in ("regression", "classification"):
        att = doc["analysis"]["attention"][task]
        assert att["n"] == 400 and att["sum_max_error"] < 1e-5
        assert att["tokens"] == ["positive", "negative", "user", "item", "history", "context"]
        assert sum(att["means"]["all"][t] for t in att["tokens"]) == pytest.approx(1.0, abs=1e-5)
    ins = doc["analysis"]["insights"]
    assert ins["explained_pairs"] == 2000 and len(ins["items"]) == 3
    assert all(it["positive"] for it in ins["items"])
    unc = doc["analysis"]["uncertainty"]
    assert sum(b["n"] for b in unc["bins"]) == 400 and unc["seeds"] == [0, 1]
    # the no_profile table was written by the LLM for the 4 budget pairs; contrastive reused
    gen = doc["generation"]
    assert gen["no_profile"]["source"] == "llm" and gen["no_profile"]["pairs"] == 4
    assert gen["contrastive"]["source"].endswith("ml100k_u200x10_explanations.parquet")


def test_a_stopped_study_resumes_where_it_stopped(study, caplog):
    cfg, out = study
    units = sorted((out / "cache").glob("*.json"))
    for lost in units[:3]:  # as if the study had stopped before these finished
        lost.unlink()
    kept = {p: p.stat().st_mtime_ns for p in units[3:]}
    caplog.set_level("INFO", logger="lr_recsys")
    assert main(["study", "--config", str(cfg), "--no-progress"]) == 0
    assert f"{len(units)} distinct units, {len(units) - 3} already cached" in caplog.text
    assert all(p.exists() for p in units[:3])
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # nothing else retrained


def test_report_rerenders_and_bad_configs_fail_clearly(study, tmp_path, capsys):
    cfg, out = study
    assert main(["report", "--study", str(out), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").exists()
    assert main(["report", "--study", str(tmp_path / "nothing")]) == 2
    # a plain comparison's output: its tables and learning curve (no model weights to analyse)
    committed = ROOT / "benchmarks" / "results" / "ml100k_explained_curve.json"
    assert main(["report", "--compare", str(committed), "--out", str(tmp_path / "cmp")]) == 0
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert 'id="learning-efficiency"' in page and "a comparison keeps no model weights" in page
    assert main(["report", "--train-dir", str(tmp_path)]) == 2  # not a train step's output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sections]]\nname = "main"\nmodels = ["lr-recsys", "nope"]\n')
    assert main(["study", "--config", str(bad)]) == 2
    bad.write_text('[[sections]]\nname = "a"\n[[sections]]\nname = "a"\n')
    assert main(["study", "--config", str(bad)]) == 2
