"""OpenAI-compatible HTTP backend: any vLLM server, ``llama_cpp.server`` or hosted endpoint.

Uses ``/v1/completions`` (completion-style prompts); the API key comes from an environment
variable, never from config files. Connection errors, timeouts, 429 and 5xx are retried with
exponential backoff; other 4xx fail at once with the server's message.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from lr_recsys.explain.backends.base import Backend, Completion, Decoding

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class BackendError(RuntimeError):
    """The LLM endpoint failed for good."""


class OpenAIHTTPBackend(Backend):
    """Completions over HTTP with bounded concurrency."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        concurrency: int = 4,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model
        self.model_id = f"openai:{model}"
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.concurrency = max(1, concurrency)
        key = os.environ.get(api_key_env, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers)

    def _one(self, prompt: str, decoding: Decoding) -> Completion:
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": decoding.max_tokens,
            "temperature": decoding.temperature,
            "top_p": decoding.top_p,
            "seed": decoding.seed,
            "stop": list(decoding.stop),
        }
        url = f"{self.base_url}/completions"
        last: str = ""
        for attempt in range(self.max_retries + 1):
            start = time.perf_counter()
            try:
                resp = self.client.post(url, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    data = resp.json()
                    usage = data.get("usage") or {}
                    return Completion(
                        data["choices"][0]["text"],
                        int(usage.get("prompt_tokens", 0)),
                        int(usage.get("completion_tokens", 0)),
                        time.perf_counter() - start,
                        data["choices"][0].get("finish_reason") or "stop",
                    )
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code not in RETRY_STATUS:
                    raise BackendError(f"{url} rejected the request: {last}")
            if attempt < self.max_retries:
                delay = self.backoff_s * 2**attempt
                log.warning("%s failed (%s); retry %d in %.1fs", url, last, attempt + 1, delay)
                time.sleep(delay)
        raise BackendError(f"{url} failed after {self.max_retries + 1} attempts: {last}")

    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        if self.concurrency == 1 or len(prompts) == 1:
            return [self._one(p, decoding) for p in prompts]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda p: self._one(p, decoding), prompts))

    def close(self) -> None:
        self.client.close()
