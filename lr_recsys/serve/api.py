"""HTTP API models of the ranking service (typed, strict: a wrong type is a 422, never coerced)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

MAX_K = 100  # items returned per request
MAX_CANDIDATES = 1000  # candidate ids a request may send
MAX_ID_LEN = 128  # characters of a user or item id
# an id: the length bound also makes pydantic check that the text is Unicode, so a lone UTF-16
# surrogate (valid in JSON) is a 422 naming the field; a bare StrictStr lets it through
Id = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LEN)]


class RankRequest(BaseModel):
    """Rank candidates for one user."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id
    candidate_item_ids: list[Id] | None = Field(
        default=None, min_length=1, max_length=MAX_CANDIDATES,
        description="items to rank; omitted = the candidate generator (unrated items, most popular first)",
    )  # fmt: skip
    k: StrictInt = Field(default=10, ge=1, le=MAX_K, description="how many items to return")
    explain: StrictBool = Field(default=True, description="include the explanation texts")


class Explanation(BaseModel):
    """Why the consumer would (positive) and would not (negative) like the item."""

    positive: str | None
    negative: str | None
    # llm: the LLM explained this pair (texts set); distilled: the distilled explainer computed
    # its vectors at request time (no text was generated for this pair, texts null; the pair is
    # queued for the LLM); fallback: no vectors could be computed (``reason`` says why)
    source: Literal["llm", "distilled", "fallback"]
    reason: str | None = None


class Attention(BaseModel):
    """Attention each input token receives (averaged over queries; sums to 1)."""

    pos: float | None
    neg: float | None
    user: float
    item: float
    seq: float
    context: float


class RankedItem(BaseModel):
    item_id: str
    title: str
    score: float  # the model's sigmoid output
    predicted_rating: float | None  # regression models: on the dataset's rating scale
    explanation: Explanation | None
    attention: Attention | None  # models without the attention layer: none


class RankResponse(BaseModel):
    model_version: str
    model: str
    user_id: str
    cold_start: bool  # unknown user: candidate-generator order, flagged
    candidates: Literal["request", "generator"]
    fallbacks: int  # candidates scored with zero explanation vectors (nothing to distil from)
    distilled: int = 0  # candidates whose explanation vectors were distilled at request time
    items: list[RankedItem]
    timings_ms: dict[str, float]  # features, model, total (server side)


class Ready(BaseModel):
    ready: bool
    model_version: str | None = None
    reason: str | None = None


class ReloadResult(BaseModel):
    model_version: str
    changed: bool
