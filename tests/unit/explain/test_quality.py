"""Explanation-quality report: exact counts on a hand-built table of real ml-100k items, the
naming rules, the residual probe on a planted signal and on noise, and the error paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig, TrainConfig
from lr_recsys.data import Prepared, RawTables, prepare
from lr_recsys.explain.prompts import ItemAttributes, get_domain, item_attributes
from lr_recsys.explain.quality import (
    attribute_pattern,
    continuation,
    format_quality,
    quality_report,
    residual_probe,
    template_words,
    text_quality,
)
from tests.synthetic import planted_tables

# Real ml-100k titles and genres, watched in this order by u1; u2 watched the first three too.
# Ran's genres (Drama|War) are blanked: a catalogue row without categories.
ITEMS = (
    ("1", "Toy Story (1995)", "Animation|Children's|Comedy"),
    ("50", "Star Wars (1977)", "Action|Adventure|Romance|Sci-Fi|War"),
    ("100", "Fargo (1996)", "Crime|Drama|Thriller"),
    ("127", "Godfather, The (1972)", "Action|Crime|Drama"),
    ("181", "Return of the Jedi (1983)", "Action|Adventure|Romance|Sci-Fi|War"),
    ("258", "Contact (1997)", "Drama|Sci-Fi"),
    ("286", "English Patient, The (1996)", "Drama|Romance|War"),
    ("294", "Liar Liar (1997)", "Comedy"),
    ("647", "Ran (1985)", ""),
)
POS = "The consumer watched this movie because the consumer likes"
NEG = "The consumer did not watch this movie because the consumer does not usually watch"
# (user, candidate) -> positive, negative, flags; the seeds are what attribute_seed writes for
# the pair (checked by seed_mismatch == 0), the continuations are hand-written.
ROWS = {
    ("u1", "100"): (
        f"{POS} movies like Star Wars, and Fargo is a dark comedy.",
        f"{NEG} crime movies and found Fargo too violent.",
        "",
    ),
    ("u2", "100"): (  # same history and candidate as u1's: the duplicated positive sentence
        f"{POS} movies like Star Wars, and Fargo is a dark comedy.",
        f"{NEG} crime movies and found Fargo too bleak.",
        "",
    ),
    ("u1", "258"): (
        f"{POS} drama movies like The Godfather, and Contact is a science fiction drama about aliens.",
        f"{NEG} drama movies and found Contact too slow for a sci-fi movie.",
        "",
    ),
    ("u1", "286"): (
        f"{POS} drama movies like Contact, and The English Patient is a drama movie.",
        f"{NEG} romance movies and found The English Patient too long.",
        "",
    ),
    ("u1", "294"): (
        f"{POS} movies like The English Patient, and Liar Liar is a funny Jim Carrey film.",
        f"{NEG} comedy movies and found Liar Liar too silly.",
        "",
    ),
    ("u1", "647"): (  # the negative names nothing of the candidate or the history
        f"{POS} movies like Liar Liar, and Ran is a good movie.",
        f"{NEG} movies like this and found Ran too long and violent.",
        "",
    ),
    ("u1", "1"): (  # empty history; retried
        f"{POS} movies, and Toy Story is a good movie.",
        f"{NEG} animation movies and found Toy Story too childish.",
        "positive:off_format,positive:retried",
    ),
    ("u1", "181"): (  # the negative failed twice: the bare seed is stored
        f"{POS} action movies like The Godfather, and Return of the Jedi is a science fiction adventure.",
        f"{NEG} adventure movies and found Return of the Jedi too.",
        "negative:empty,negative:failed,negative:retried",
    ),
}


@pytest.fixture(scope="module")
def catalogue() -> Prepared:
    """Two users over nine real ml-100k movies (u1 all nine, u2 the first three)."""
    items = pd.DataFrame(ITEMS, columns=[schema.ITEM_ID, schema.TITLE, schema.CATEGORIES])
    items[schema.DESCRIPTION] = ""
    rows = [("u1", i, 4.0, 1_000 + k) for k, (i, _, _) in enumerate(ITEMS)]
    rows += [("u2", i, 2.0, 5_000 + k) for k, (i, _, _) in enumerate(ITEMS[:3])]
    inter = pd.DataFrame(rows, columns=list(schema.INTERACTION_COLUMNS))
    return prepare(RawTables(inter, items, None, "ml-100k-sample"), DataConfig(dataset="generic"))


@pytest.fixture(scope="module")
def table(catalogue: Prepared) -> pd.DataFrame:
    """The eight hand-written rows plus one pair the prepared data does not know."""
    keys = catalogue.examples.set_index([schema.USER_ID, schema.ITEM_ID])[schema.PAIR_KEY]
    rows = [(keys[k], *texts) for k, texts in ROWS.items()]
    rows.append(("not-a-pair", f"{POS} it.", f"{NEG} it.", ""))
    return pd.DataFrame(rows, columns=[schema.PAIR_KEY, schema.POSITIVE, schema.NEGATIVE, "flags"])


def test_text_quality_counts_on_a_hand_built_table(catalogue, table):
    q = text_quality(table, catalogue)
    assert (q["pairs"], q["unknown_pairs"], q["duplicate_keys"]) == (9, 1, 0)
    assert (q["flagged"], q["failed"]) == (2, 1)
    pos, neg = q["positive"], q["negative"]
    assert pos == {
        "n": 8,
        "distinct_ratio": 7 / 8,  # u1's and u2's Fargo sentences are the same
        "top_share": 2 / 8,
        "top_sentence": ROWS["u1", "100"][0],
        "names_candidate": 7 / 8,  # all but Ran (no categories, a 3-letter title)
        "names_history": 7 / 8,  # all but Toy Story (empty history)
        "continuation_names_candidate": 3
        / 8,  # Contact's drama, the Patient's drama, Jedi's adventure
        "continuation_names_history": 5 / 8,  # "comedy" (Toy Story) twice, drama, drama, adventure
        "distinct_continuations": 6 / 8,  # "a dark comedy" twice, "a good movie" twice
        "seed_mismatch": 0,
    }
    assert neg == {
        "n": 8,
        "distinct_ratio": 1.0,
        "top_share": 1 / 8,
        "top_sentence": ROWS["u1", "100"][1],  # ties: the first in table order
        "names_candidate": 7 / 8,  # all but Ran's
        "names_history": 3 / 8,  # drama (Fargo), romance (Star Wars), adventure (Star Wars)
        "continuation_names_candidate": 1 / 8,  # "sci-fi" of Contact
        "continuation_names_history": 1 / 8,  # the same "sci-fi", of Star Wars and the Jedi
        "distinct_continuations": 1.0,  # the failed answer's is empty
        "seed_mismatch": 0,
    }
    assert q["names_candidate"] == 14 / 16
    assert q["goals"] == {
        "positive_distinct": True,
        "positive_top_share": False,
        "negative_distinct": True,
        "negative_top_share": False,
        "names_candidate": True,
    }


def test_text_quality_keeps_the_first_of_duplicate_keys_and_reads_tables_without_flags(
    catalogue, table
):
    doubled = pd.concat([table, table.head(1).assign(positive="other")]).drop(columns="flags")
    q = text_quality(doubled, catalogue)
    assert (q["pairs"], q["duplicate_keys"], q["flagged"], q["failed"]) == (9, 1, 0, 0)
    assert q["positive"]["distinct_ratio"] == 7 / 8


def test_fixed_prefix_variants_strip_the_prefix_and_positive_only_has_one_side(catalogue, table):
    keys = table[schema.PAIR_KEY].head(2)
    plain = pd.DataFrame(
        {
            schema.PAIR_KEY: keys,
            schema.POSITIVE: [f"{POS} crime movies like Fargo.", f"{POS} the actors."],
            schema.NEGATIVE: "",
        }
    )
    q = text_quality(plain, catalogue, variant="positive_only")
    assert "negative" not in q and set(q["goals"]) == {
        "positive_distinct",
        "positive_top_share",
        "names_candidate",
    }
    assert q["positive"]["continuation_names_candidate"] == 0.5
    assert q["positive"]["seed_mismatch"] == 0
    # read as the attributes variant, the same sentences do not start with the expected seed
    q = text_quality(plain.assign(negative="x"), catalogue, variant="attributes")
    assert q["positive"]["seed_mismatch"] == 2


def test_long_titles_cut_with_an_ellipsis_still_match_their_seed():
    title = "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1963)"
    items = pd.DataFrame({schema.ITEM_ID: ["100", "474"], schema.TITLE: ["Fargo (1996)", title]})
    items[schema.CATEGORIES], items[schema.DESCRIPTION] = ["Crime|Drama|Thriller", "Sci-Fi|War"], ""
    rows = [("u1", i, 4.0, 1_000 + k) for k, i in enumerate(["100", "474", "100"])]
    inter = pd.DataFrame(rows, columns=list(schema.INTERACTION_COLUMNS))
    prepared = prepare(
        RawTables(inter, items, None, "ml-100k-sample"), DataConfig(dataset="generic")
    )
    key = prepared.examples[schema.PAIR_KEY].iloc[1]
    cut = "Dr. Strangelove or: How I Learned to Stop Worrying and Love\u2026"  # short_title's cut
    table = pd.DataFrame(
        {
            schema.PAIR_KEY: [key],
            schema.POSITIVE: [f"{POS} movies like Fargo, and {cut} is a satire."],
            schema.NEGATIVE: [f"{NEG} sci-fi movies and found {cut} too dark."],
        }
    )
    q = text_quality(table, prepared)
    assert q["positive"]["seed_mismatch"] == q["negative"]["seed_mismatch"] == 0
    assert q["positive"]["continuation_names_candidate"] == 0.0  # "a satire" names nothing


def test_a_table_of_unknown_pairs_is_reported_not_raised(catalogue):
    alien = pd.DataFrame({schema.PAIR_KEY: ["a", "b"], schema.POSITIVE: "x", schema.NEGATIVE: "y"})
    q = text_quality(alien, catalogue)
    assert (q["pairs"], q["unknown_pairs"], q["positive"]["n"]) == (2, 2, 0)
    assert np.isnan(q["positive"]["distinct_ratio"]) and not any(q["goals"].values())
    assert "2 unknown" in format_quality(q)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a war movie", True),
        ("two wars", True),
        ("an award winner", False),  # whole words only
        ("warm and fuzzy", False),
        ("one of the best COMEDIES", True),  # case and plural
        ("a classic film noir", True),  # hyphen as a space
        ("sci-fi fans", False),  # not one of this item's genres
        ("a children's classic", True),
        ("a childish plot", False),
        ("in the Gotham style", True),  # a title word of 4+ letters
        ("of the story", False),  # "The" is short, "Story" is not in the title
    ],
)
def test_what_names_an_item(text, named):
    attrs = item_attributes("Gotham Nights, The (1950)", "War|Comedy|Film-Noir|Children's")
    pattern = attribute_pattern(attrs)
    assert pattern is not None
    assert bool(pattern.search(text)) is named


def test_items_with_nothing_to_name_and_placeholder_categories():
    assert attribute_pattern(ItemAttributes("Ran")) is None
    morning = attribute_pattern(item_attributes("Good Morning (1971)", "unknown"))
    assert morning is not None and morning.search("an unknown movie") is None
    assert morning.search("a good movie") is None  # "good" is a stopword, "Morning" counts
    assert morning.search("a morning show")
    # template words (every answer has them) do not count as naming the item
    words = template_words(get_domain("movie"))
    assert {"because", "watched", "usually", "found", "movies"} <= words
    dixie = attribute_pattern(item_attributes("Because of Winn-Dixie (2005)", "Drama"), words)
    assert dixie is not None and dixie.search("because") is None and dixie.search("dixie")


def test_continuation_removes_the_shared_seed_words():
    seed = f"{NEG} war movies and found Ran too"
    assert continuation(f"{seed} violent.", seed) == ("violent", True)
    assert continuation(f"{seed}.", seed) == ("", True)
    assert continuation(f"{NEG} comedies.", seed) == ("comedies", False)


def test_empty_or_malformed_tables_raise(catalogue, table):
    with pytest.raises(ValueError, match="empty"):
        text_quality(table.iloc[:0], catalogue)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['negative'\]"):
        text_quality(table.drop(columns="negative"), catalogue)


def test_format_quality_prints_a_table_per_side(catalogue, table):
    out = format_quality(text_quality(table, catalogue))
    assert "| positive (n=8) | share |" in out and "| negative (n=8) | share |" in out
    assert "| distinct sentences | 0.875 |" in out
    assert "9 pairs: 2 retried, 1 failed, 1 unknown" in out
    assert "positive_top_share MISSED" in out


# -- residual probe -----------------------------------------------------------------------------
FAST = TrainConfig(epochs=3, progress=False)


@pytest.fixture(scope="module")
def planted() -> Prepared:
    """Random ratings (nothing to learn for the twin): 40 users x 30 items, 80 val pairs."""
    return prepare(planted_tables(), DataConfig(dataset="generic"))


def _vectors(prepared: Prepared, signal: str | None, seed: int = 0) -> pd.DataFrame:
    """8-d pos/neg embeddings of noise; with ``signal``, pos[0] carries that column."""
    ex = prepared.examples
    rng = np.random.default_rng(seed)
    pos, neg = rng.normal(size=(len(ex), 8)), rng.normal(size=(len(ex), 8))
    if signal is not None:
        pos[:, 0] = ex[signal].to_numpy() * 4 + rng.normal(scale=0.2, size=len(ex))
    return pd.DataFrame(
        {schema.POS_EMB: list(pos), schema.NEG_EMB: list(neg)}, index=ex[schema.PAIR_KEY]
    )


def test_probe_finds_a_planted_residual_signal(planted):
    p = residual_probe(planted, _vectors(planted, schema.TARGET), train_cfg=FAST, n_boot=200)
    assert p["n"] == len(planted.split("val")) == 80
    assert p["lift"] > 0.05 and p["lift_ci95"][0] > 0
    assert p["rmse_twin_rating"] == pytest.approx(p["rmse_twin"] * 4)
    base = p["baseline_probe"]  # the permuted control finds nothing
    assert base["lift"] < 0.01 and base["lift_ci95"][0] < 0


def test_probe_on_noise_finds_nothing(planted):
    p = residual_probe(planted, _vectors(planted, None), train_cfg=FAST, n_boot=200)
    assert p["lift"] <= 0.005 and p["lift_ci95"][0] <= 0


def test_classification_probe_finds_a_planted_label_signal(planted):
    p = residual_probe(
        planted, _vectors(planted, schema.LABEL), "classification", train_cfg=FAST, n_boot=200
    )
    assert p["auc_probe"] > p["auc_twin"] + 0.2 and p["lift_ci95"][0] > 0
    assert p["baseline_probe"]["lift"] < 0.1  # the permuted control does not help


def test_probe_skips_when_too_few_pairs_have_vectors(planted):
    few = _vectors(planted, None).loc[planted.split("val")[schema.PAIR_KEY].head(19)]
    assert residual_probe(planted, few, folds=5) == {
        "n": 19,
        "skipped": "19 val pairs have vectors; need 20",
    }


def test_probe_refuses_the_test_split_and_bad_inputs(planted):
    vectors = _vectors(planted, None)
    with pytest.raises(ValueError, match="test split"):
        residual_probe(planted, vectors, split="test")
    with pytest.raises(ValueError, match="unknown task"):
        residual_probe(planted, vectors, task="ranking")
    with pytest.raises(ValueError, match=r"lack column\(s\) \['neg_emb'\]"):
        residual_probe(planted, vectors.drop(columns=schema.NEG_EMB))


def test_quality_report_adds_a_probe_per_task(catalogue, table):
    report = quality_report(table, catalogue, vectors=_vectors(catalogue, None), train_cfg=FAST)
    n_val = len(catalogue.split("val"))
    assert report["probe"]["regression"] == {
        "n": n_val,
        "skipped": f"{n_val} val pairs have vectors; need 20",
    }
    assert "- probe regression: skipped" in format_quality(report)
