"""The one place that names columns, features and entities.

Data preparation, training, the feature store and serving all import these names: a feature
spelled in two files is where training/serving skew starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

# --- raw (canonical) tables -------------------------------------------------------------------
USER_ID = "user_id"
ITEM_ID = "item_id"
RATING = "rating"
TIMESTAMP = "timestamp"
TITLE = "title"
DESCRIPTION = "description"
CATEGORIES = "categories"

INTERACTION_COLUMNS = (USER_ID, ITEM_ID, RATING, TIMESTAMP)
ITEM_REQUIRED_COLUMNS = (ITEM_ID, TITLE)
ITEM_OPTIONAL_COLUMNS = (DESCRIPTION, CATEGORIES)

# --- prepared examples ------------------------------------------------------------------------
HISTORY = "history"  # list[str] of the previous item ids, left-padded with PAD_ITEM
ITEM_TEXT = "item_text"
SPLIT = "split"
TARGET = "target"  # rating scaled to [0, 1] (regression)
LABEL = "label"  # 1 if rating >= high_rating_threshold (classification)
PAIR_KEY = "pair_key"

SPLIT_TRAIN = "train"
SPLIT_VAL = "val"
SPLIT_TEST = "test"
SPLITS = (SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST)

PAD_ITEM = ""  # raw id used for left padding of short histories

# --- explanation table ------------------------------------------------------------------------
POSITIVE = "positive"
NEGATIVE = "negative"
EXPLANATION_COLUMNS = (PAIR_KEY, POSITIVE, NEGATIVE)

# --- model input tokens (order matters: attention weights are reported with these names) ------
TOKEN_NAMES = ("pos", "neg", "user", "item", "seq", "context")

# --- feature store (Feast): entities, views, features ---------------------------------------
EVENT_TIMESTAMP = "event_timestamp"
ENTITY_USER = "user"
ENTITY_ITEM = "item"
FV_PAIR = "pair_explanations"  # per (user, item): AE embeddings + texts of the latest explanation
FV_USER = "user_history"  # per user: the latest history_len item ids
FV_ITEM = "item_profile"  # per item: the text the LLM and the encoders read
POS_EMB = "pos_emb"
NEG_EMB = "neg_emb"
EXPLANATION_SOURCE = "explanation_source"  # "llm" or "distilled" (lr_recsys.distill)
HISTORY_IDS = "history_item_ids"
RATED_IDS = "rated_item_ids"  # every item the user has rated: serving skips them as candidates
FEATURE_SERVICE_PREFIX = "lr_recsys_v"


def feature_service_name(model_version: str | int) -> str:
    """The versioned Feast FeatureService a model version reads its features through."""
    return f"{FEATURE_SERVICE_PREFIX}{model_version}"


# --- tasks ------------------------------------------------------------------------------------
REGRESSION = "regression"
CLASSIFICATION = "classification"
TASKS = (REGRESSION, CLASSIFICATION)


def pair_key(user_id: str, history: Sequence[str], item_id: str) -> str:
    """Stable key of one (consumer, history, candidate) pair.

    The explanation for a pair depends on who the consumer is, what they consumed last and what
    the candidate is, so all three are part of the key.

    Args:
        user_id: Raw user id.
        history: Raw ids of the previous items, oldest first, padded with ``PAD_ITEM``.
        item_id: Raw candidate item id.

    Returns:
        A 20-hex-character digest.
    """
    raw = json.dumps([str(user_id), [str(h) for h in history], str(item_id)], ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:20]
