"""Lineage of a trained model: where its data, explanations and code came from.

What a reviewer needs to trust or reproduce a registered run, computed once and logged with it
(``lr_recsys.registry.register_model``): the dataset fingerprint (hash of the interactions and of
the split), the LLM that wrote the explanations (backend, model file hash, prompt variant and
template version, decoding), the LLM budget and the distilled explainer's fidelity, and the code
version. ``diff`` compares two runs' lineage for ``lr-recsys promote``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from lr_recsys import schema

LINEAGE = "lineage.json"  # the explain step's LLM lineage, next to its table
REFRESH_LLM = "refresh_llm"  # summary.json of a refresh: the LLM lineage of its new pairs


def _sha(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    h.update(",".join(map(str, frame.columns)).encode())
    return h.hexdigest()[:16]


def dataset_fingerprint(examples: pd.DataFrame) -> dict[str, Any]:
    """Hashes of the interactions (user, item, rating target, time) and of the split (which
    pair went to which split), independent of row order; with the split's sizes."""
    cols = [schema.USER_ID, schema.ITEM_ID, schema.TARGET, schema.TIMESTAMP]
    missing = [c for c in [*cols, schema.PAIR_KEY, schema.SPLIT] if c not in examples.columns]
    if missing:
        raise ValueError(f"examples lack column(s) {missing} for the dataset fingerprint")
    inter = examples[cols].astype(str).sort_values(cols).reset_index(drop=True)
    split = (
        examples[[schema.PAIR_KEY, schema.SPLIT]]
        .astype(str)
        .sort_values([schema.PAIR_KEY, schema.SPLIT])
    )
    counts = examples[schema.SPLIT].value_counts()
    return {
        "interactions_hash": _sha(inter),
        "split_hash": _sha(split.reset_index(drop=True)),
        "examples": int(len(examples)),
        **{f"n_{k}": int(v) for k, v in sorted(counts.items())},
    }


def _hash_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lr_recsys" / "file_hashes.json"


def file_sha256(path: Path) -> str:
    """sha256 of a (large) file, cached by path, size and modification time so a 250 MB model
    file is read once per machine."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    cache = _hash_cache()
    known: dict[str, str] = {}
    if cache.exists():
        try:
            known = json.loads(cache.read_text())
        except (OSError, json.JSONDecodeError):
            known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    known[key] = h.hexdigest()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    except OSError:  # a read-only home: the hash is still right, only not remembered
        pass
    return known[key]


def template_version() -> str:
    """Hash of the prompt-building source (``lr_recsys.explain.prompts``): any change to a
    template, seed or sanitiser gives a new version, so it cannot go stale."""
    from lr_recsys.explain import prompts

    return hashlib.sha256(inspect.getsource(prompts).encode()).hexdigest()[:12]


def llm_lineage(llm, variant: str, domain: str = "movie") -> dict[str, Any]:
    """Which LLM wrote the explanations and how (``llm``: an ``LLMConfig``)."""
    from lr_recsys.explain.engine import model_id_for

    out: dict[str, Any] = {
        "backend": llm.backend, "model": model_id_for(llm), "variant": variant, "domain": domain,
        "template_version": template_version(), "max_tokens": llm.max_tokens,
        "temperature": llm.temperature, "seed": llm.seed, "n_ctx": llm.n_ctx,
    }  # fmt: skip
    path = None
    if llm.backend == "llamacpp":
        from lr_recsys.explain.backends.llamacpp import default_model_path

        try:
            path = Path(llm.model_path) if llm.model_path else default_model_path()
        except ImportError:
            path = None
    elif llm.model and Path(llm.model).is_file():  # vllm from a local file
        path = Path(llm.model)
    out["model_sha256"] = file_sha256(path) if path is not None and path.is_file() else "none"
    return out


def code_version() -> dict[str, Any]:
    """The package version and, in a git checkout, its commit and whether files were changed."""
    import lr_recsys

    out: dict[str, Any] = {
        "package": lr_recsys.__version__,
        "git_commit": "none",
        "git_dirty": "none",
    }
    root = Path(lr_recsys.__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                 timeout=10, check=False)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit:
        out["git_commit"] = commit
        status = git("status", "--porcelain", "--untracked-files=no")
        out["git_dirty"] = "none" if status is None else str(bool(status)).lower()
    return out


def flatten(prefix: str, values: dict[str, Any]) -> dict[str, str]:
    """``{"prefix.key": "value"}`` (nested dicts joined with dots; lists as JSON) for MLflow
    params, values cut at MLflow's 6,000 characters."""
    out: dict[str, str] = {}
    for k, v in values.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(key, v))
        else:
            text = json.dumps(v) if isinstance(v, list | tuple) else str(v)
            out[key] = text[:6000]
    return out


def diff(challenger: dict[str, str], champion: dict[str, str]) -> list[tuple[str, str, str]]:
    """(key, champion value, challenger value) of every key whose value differs, sorted."""
    keys = sorted(set(challenger) | set(champion))
    return [(k, champion.get(k, "(absent)"), challenger.get(k, "(absent)"))
            for k in keys if challenger.get(k) != champion.get(k)]  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text()) if Path(path).exists() else {}


def model_lineage(train_dir: Path, evaluation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything registration logs about a train step's model (``train_dir``: its artifact
    with ``summary.json``, ``autoencoder/`` and ``distiller/`` carrying the explain and distill
    steps' ``lineage.json``, ``quality.json`` and ``distill.json``): MLflow ``params``,
    ``metrics``, per-epoch ``curves``, ``tags`` and the version ``description``. Absent inputs
    (a model without explanations, another backend) give ``"none"``, never an error."""
    from lr_recsys.steps.data import QUALITY
    from lr_recsys.steps.distill import DISTILL_REPORT
    from lr_recsys.steps.train import AUTOENCODER, DISTILLER, SUMMARY

    train_dir = Path(train_dir)
    summary = _read(train_dir / SUMMARY)
    model = summary.get("model", "?")
    config = summary.get("configs", {}).get(model, {})
    distiller = train_dir / DISTILLER
    llm = _read(distiller / LINEAGE)
    quality = _read(distiller / QUALITY)
    fidelity = _read(distiller / DISTILL_REPORT)
    ae = _read(train_dir / AUTOENCODER / "config.json")  # ExplanationEncoder.save's config
    data = summary.get("dataset", {})
    code = summary.get("code") or code_version()
    params = {
        **flatten("model", config.get("model", {})), **flatten("train", config.get("train", {})),
        **flatten("ae", {k: v for k, v in ae.items() if k != "progress"} or {"used": "none"}),
        **flatten("llm", {k: v for k, v in llm.items() if k != "budget"} or {"backend": "none"}),
        **flatten("budget", llm.get("budget", {"llm_pairs": "none"})),
        **flatten("data", data or {"interactions_hash": "none"}),
        **flatten("code", code),
    }  # fmt: skip
    refresh = summary.get(REFRESH_LLM)
    if refresh is not None:  # a refresh: ``llm.*`` is the champion's, this the new pairs' LLM
        params |= flatten("refresh.llm", {k: v for k, v in refresh.items() if k != "budget"}
                          or {"backend": "none"})  # fmt: skip
        params |= flatten("refresh.budget", refresh.get("budget", {"llm_pairs": "none"}))
    metrics: dict[str, float] = {}
    for side in (schema.POSITIVE, schema.NEGATIVE):
        for k, v in quality.get(side, {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                metrics[f"quality_{side}_{k}"] = float(v)
    for k, v in fidelity.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            metrics[k if k.startswith(("fidelity_", "probe_")) else f"distill_{k}"] = float(v)
    tags = {
        "data.interactions_hash": str(data.get("interactions_hash", "none")),
        "data.split_hash": str(data.get("split_hash", "none")),
        "llm.model_sha256": str(llm.get("model_sha256", "none")),
        "llm.template_version": str(llm.get("template_version", "none")),
        "code.git_commit": str(code.get("git_commit", "none")),
    }
    return {"params": params, "metrics": metrics, "curves": summary.get("history", []),
            "tags": tags, "description": headline(summary, llm, data, evaluation)}  # fmt: skip


def headline(summary: dict[str, Any], llm: dict[str, Any], data: dict[str, Any],
             evaluation: dict[str, Any] | None) -> str:  # fmt: skip
    """The registry version's description: the model's test numbers, its margin over the bias
    floor, the LLM budget and the data it saw."""
    import numpy as np

    model, task = summary.get("model", "?"), summary.get("task", "?")
    per_seed = summary.get("per_seed", {})
    parts = []
    for m in ("rmse", "mae", "auc"):
        if per_seed.get(m):
            v = np.asarray(per_seed[m], float)
            std = f" ± {v.std(ddof=1):.4f}" if len(v) > 1 else ""
            parts.append(f"{m.upper()} {v.mean():.4f}{std}")
    line = (
        f"{model} ({task}): " + ", ".join(parts) + f" over {len(summary.get('seeds', []))} seed(s)"
    )
    rows = {r.get("model"): r for r in (evaluation or {}).get("table", [])}
    mine = rows.get(model, {})
    vs = [f"{k.removesuffix('_vs_bias_pct').upper()} {v:+.2f}%" for k, v in mine.items()
          if k in ("rmse_vs_bias_pct", "auc_vs_bias_pct")]  # fmt: skip
    if vs:
        line += f"; vs the bias floor {', '.join(vs)}"
    budget = llm.get("budget", {})
    if budget:
        line += (f". LLM {llm.get('model', '?')} ({llm.get('backend', '?')}, variant "
                 f"{llm.get('variant', '?')}) explained {budget.get('explained', '?')} of "
                 f"{budget.get('all_pairs', '?')} pairs; the rest distilled")  # fmt: skip
    refresh = summary.get(REFRESH_LLM, {}).get("budget")
    if refresh:
        line += (f". Refresh ({summary.get('mode', '?')}): the LLM explained "
                 f"{refresh.get('explained', '?')} of {refresh.get('all_pairs', '?')} new pairs")  # fmt: skip
    if data:
        line += (f". Data {data.get('interactions_hash', '?')}, split {data.get('split_hash', '?')} "
                 f"({data.get('examples', '?')} examples)")  # fmt: skip
    return line + "."
