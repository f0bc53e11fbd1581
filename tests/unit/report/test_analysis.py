"""Report analyses on small real tables: keyword hand counts, uncertainty bins, rendering."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lr_recsys.report.analysis import (
    attention_summary,
    item_insights,
    keyword_scores,
    uncertainty_gain,
    words,
)
from lr_recsys.report.render import markdown_to_html

TABLE = Path(__file__).parents[3] / "benchmarks" / "data" / "ml100k_llm1000_attributes.parquet"


@pytest.fixture
def real_rows() -> pd.DataFrame:
    """The first three explanations Gemma wrote for the main job's budget, as one item's pairs,
    with attention shares and the titles each names (not to be counted)."""
    rows = pd.read_parquet(TABLE).head(3).reset_index(drop=True)
    assert rows.loc[0, "negative"].endswith("found Strange Days too violent.")  # the pinned table
    return rows.assign(
        item_id="42", title="Strange Days (1995)",
        attn_positive=[0.2, 0.5, 0.3], attn_negative=[0.1, 0.4, 0.25],
        exclude=[words("Wallace & Gromit: The Best of Aardman Animation Strange Days"),
                 words("Enchanted April Sabrina"), words("Full Speed Half Baked")],
    )  # fmt: skip


def test_insight_keywords_match_a_hand_count(real_rows):
    # positives: "... and Strange Days is a movie that is a comedy." / "... Sabrina is a movie
    # that is a romance." / "... Half Baked is a movie that is a comedy."
    # negatives: "... watch action movies and found Strange Days too violent." / "... watch
    # comedy movies and found Sabrina too much to like." / "... comedy movies and found Half
    # Baked too funny."
    (insight,) = item_insights(real_rows, items=5, keywords=10)
    assert insight["pairs"] == 3 and insight["title"] == "Strange Days (1995)"
    pos = [(k["word"], round(k["score"], 6), k["count"]) for k in insight["positive"]]
    assert pos == [("comedy", 0.5, 2), ("romance", 0.5, 1)]  # 0.2 + 0.3; 0.5
    neg = [(k["word"], round(k["score"], 6), k["count"]) for k in insight["negative"]]
    assert neg == [("comedy", 0.65, 2), ("funny", 0.25, 1), ("action", 0.1, 1), ("violent", 0.1, 1)]
    assert insight["attention_positive"] == pytest.approx(1.0 / 3)


def test_keywords_count_every_occurrence_and_each_text_once():
    kw = keyword_scores(["dark dark comedy", "dark thriller"], [0.5, 0.25])
    got = {r["word"]: (r["score"], r["count"], r["explanations"]) for _, r in kw.iterrows()}
    assert got == {"dark": (1.25, 3, 2), "comedy": (0.5, 1, 1), "thriller": (0.25, 1, 1)}
    with pytest.raises(ValueError, match="2 texts but 1 weights"):
        keyword_scores(["a", "b"], [1.0])


def test_insights_rank_items_by_explained_pairs(real_rows):
    other = real_rows.head(1).assign(item_id="7", title="Other")
    out = item_insights(pd.concat([other, real_rows]), items=1)
    assert [i["item_id"] for i in out] == ["42"]
    with pytest.raises(ValueError, match="attn_negative"):
        item_insights(real_rows.drop(columns="attn_negative"))


def test_uncertainty_bins_split_by_the_twins_seed_spread():
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 1, 1000)
    spread = np.r_[np.full(500, 0.001), np.full(500, 0.3)]  # the second half is uncertain
    twin = {s: target + rng.normal(0, 1, 1000) * spread for s in range(3)}
    # the model fixes the uncertain half only
    model = {
        s: np.where(spread > 0.1, target + rng.normal(0, 0.01, 1000), twin[s]) for s in range(3)
    }
    out = uncertainty_gain(twin, model, target, bins=2)
    low, high = out["bins"]
    assert low["n"] == high["n"] == 500 and high["uncertainty_lo"] >= low["uncertainty_hi"] - 1e-12
    assert low["gain_pct"] == pytest.approx(0.0, abs=1e-9) and high["gain_pct"] > 80
    assert high["p"] < 0.05
    with pytest.raises(ValueError, match="2\\+ shared seeds"):
        uncertainty_gain({0: target}, {0: target}, target)


def test_attention_summary_groups_and_histograms():
    shares = np.array([[0.4, 0.1, 0.1, 0.1, 0.1, 0.2], [0.1, 0.4, 0.1, 0.1, 0.1, 0.2]])
    s = attention_summary(shares, np.array([True, False]), np.array([True, True]),
                          np.array(["llm", "distilled"]), bins=4)  # fmt: skip
    assert s["means"]["high rating"]["positive"] == pytest.approx(0.4)
    assert s["means"]["wrong"]["negative"] == pytest.approx(0.4)  # predicted high, rated low
    assert s["means"]["llm explanation"]["n"] == 1 and s["accuracy"] == 0.5
    assert sum(s["histogram"]["counts"]["positive"]["high rating"]) == 1
    assert s["sum_max_error"] < 1e-12


def test_html_embeds_local_figures_and_anchors_headings(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (tmp_path / "figures").mkdir()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(tmp_path / "figures" / "a.png")
    plt.close(fig)
    page = markdown_to_html(
        "# T\n\n## Per-item insights\n\n![a](figures/a.png)\n\n| a |\n|---|\n| <b>x</b> |\n",
        tmp_path,
    )
    (img,) = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(img).startswith(b"\x89PNG")
    assert 'id="per-item-insights"' in page and "<td>&lt;b&gt;x&lt;/b&gt;</td>" in page


def test_item_titles_are_text_not_markup(tmp_path):
    from lr_recsys.report.render import insight_lines

    ins = {"task": "regression", "explained_pairs": 1, "items": [{
        "item_id": "1", "title": "<script>alert(1)</script> | Part 2", "pairs": 1,
        "positive": [{"word": "dark", "score": 0.5, "count": 1}], "negative": [],
        "attention_positive": 0.2, "attention_negative": 0.1}]}  # fmt: skip
    page = markdown_to_html("\n".join(insight_lines(ins)), tmp_path)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; | Part 2" in page
    assert "liked for: dark 0.50 (1)" in page
