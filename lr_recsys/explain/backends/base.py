"""One interface for every LLM backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Decoding:
    """Decoding parameters; part of every cache key."""

    max_tokens: int = 48
    temperature: float = 0.0  # greedy
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ("\n", ".")

    def key(self) -> dict:
        return asdict(self)

    def retry(self) -> Decoding:
        """Parameters of the one retry of an off-format answer: sampled, another seed."""
        return Decoding(self.max_tokens, 0.7, 0.95, self.seed + 1, self.stop)


@dataclass
class Completion:
    """A raw completion and its cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str = "stop"  # "length" when max_tokens cut the answer


class Backend(ABC):
    """Text completion. Implementations: llama.cpp (CPU default), vLLM (GPU), OpenAI HTTP."""

    #: identifies the model weights (and quantisation) in cache keys
    model_id: str

    @abstractmethod
    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        """Complete every prompt (in order); batch where the backend can."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
