"""The report's figures (matplotlib, Agg backend, small PNGs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lr_recsys.compare import LOWER_IS_BETTER, TABLE_METRICS

DPI = 90


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    _plt().close(fig)
    return out


def _panels(results: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t, m) for t, ms in TABLE_METRICS.items() for m in ms[:1]
            if any(m in r.get(t, {}) for r in results.values())]  # fmt: skip


def comparison_bars(results: dict[str, Any], out: Path, title: str) -> Path | None:
    """Mean ± std of the primary metric per model and task, the bias floor as a dashed line."""
    panels = _panels(results)
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (task, m) in zip(axes[0], panels, strict=True):
        names = [n for n, r in results.items() if m in r.get(task, {}) and n != "bias"]
        means = [results[n][task][m]["mean"] for n in names]
        stds = [results[n][task][m]["std"] for n in names]
        colors = ["#d9534f" if n.startswith("lr-recsys") else "#5b8def" for n in names]
        ax.barh(names, means, xerr=stds, color=colors, capsize=3)
        floor = results.get("bias", {}).get(task, {}).get(m)
        lo = min(means + ([floor["mean"]] if floor else []))
        hi = max(means + ([floor["mean"]] if floor else []))
        if floor:
            ax.axvline(floor["mean"], color="k", linestyle="--", linewidth=1, label="bias floor")
            ax.legend(fontsize=8, loc="lower right")
        pad = (hi - lo) * 0.6 + 1e-3
        ax.set_xlim(lo - pad, hi + pad)
        better = "lower" if m in LOWER_IS_BETTER else "higher"
        ax.set_xlabel(f"test {m.upper()} ({better} is better)")
        ax.set_title(f"{task}")
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return _save(fig, out)


def variant_bars(
    points: dict[tuple[str, str], list[tuple[str, dict]]], ref: dict | None, out: Path
) -> Path | None:
    """Per prompt variant: mean ± std of each task's primary metric, the twin as a line."""
    keys = [k for k in points if k[1] in ("rmse", "auc")]
    if not keys:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        labels = [lab for lab, _ in points[key]]
        means = [s["mean"] for _, s in points[key]]
        stds = [s["std"] for _, s in points[key]]
        ax.barh(labels, means, xerr=stds, color="#d9534f", capsize=3)
        vals = list(means)
        if ref and ref.get(key):
            ax.axvline(ref[key]["mean"], color="k", linestyle="--", linewidth=1, label="twin")
            ax.legend(fontsize=8, loc="lower right")
            vals.append(ref[key]["mean"])
        pad = (max(vals) - min(vals)) * 0.6 + 1e-3
        ax.set_xlim(min(vals) - pad, max(vals) + pad)
        ax.set_xlabel(f"test {key[1].upper()}")
        ax.set_title(key[0])
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return _save(fig, out)


def attention_figures(summary: dict[str, Any], figdir: Path, stem: str) -> list[Path]:
    """(1) histograms of the attention share on the positive and negative explanation tokens,
    high vs low ratings; (2) each token's mean share per group."""
    plt = _plt()
    out = []
    counts = summary["histogram"]["counts"]
    edges = summary["histogram"]["edges"]
    if counts:
        fig, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 3), squeeze=False)
        mids = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        width = edges[1] - edges[0]
        for ax, (token, groups) in zip(axes[0], counts.items(), strict=True):
            for (group, c), color in zip(groups.items(), ("#2a9d8f", "#e76f51"), strict=False):
                total = max(sum(c), 1)
                ax.bar(mids, [v / total for v in c], width=width, alpha=0.55, color=color,
                       label=group)  # fmt: skip
            ax.set_xlabel(f"attention share of the {token} explanation")
            ax.set_ylabel("fraction of predictions")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        out.append(_save(fig, figdir / f"{stem}_hist.png"))
    tokens = summary["tokens"]
    groups = list(summary["means"])
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / max(len(groups), 1)
    for g, group in enumerate(groups):
        xs = [k + g * width for k in range(len(tokens))]
        ax.bar(xs, [summary["means"][group][t] for t in tokens], width=width, label=group)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(tokens))], tokens)
    ax.set_ylabel("mean attention share")
    ax.legend(fontsize=7, ncol=min(len(groups), 7), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.grid(axis="y", alpha=0.3)
    out.append(_save(fig, figdir / f"{stem}_shares.png"))
    return out


def uncertainty_bars(unc: dict[str, Any], out: Path) -> Path:
    """LR-Recsys's RMSE gain over the twin per uncertainty bin, mean ± std across seeds."""
    plt = _plt()
    bins = unc["bins"]
    fig, ax = plt.subplots(figsize=(6, 3))
    labels = [f"{b['bin'] + 1}\n≤{b['uncertainty_hi']:.3f}" for b in bins]
    ax.bar(labels, [b["gain_pct"] for b in bins], yerr=[b["gain_std"] for b in bins],
           color="#d9534f", capsize=3)  # fmt: skip
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xlabel("twin uncertainty bin (std of its predictions across seeds)")
    ax.set_ylabel("RMSE gain over the twin (%)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)
