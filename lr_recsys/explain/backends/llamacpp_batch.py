"""Batched greedy/sampled decoding of many prompts at once on one llama.cpp context.

llama-cpp-python's high-level API decodes one sequence at a time; on a CPU a decode step is
memory-bound, so stepping ``n`` sequences together costs little more than stepping one. This
module drives the low-level API: the prompts' longest common token prefix is evaluated once and
shared with every sequence (``llama_memory_seq_cp`` on a unified KV cache), the suffixes are
prefilled in one batch, then all live sequences advance one token per ``llama_decode`` until each
meets an end-of-generation token, a stop string or ``max_tokens``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

MIN_SHARED_PREFIX = 8  # tokens; below this, sharing is not worth a separate decode call


@dataclass
class _Seq:
    tokens: list[int]
    pos: int = 0
    text: bytes = b""
    generated: int = 0
    finish: str = ""
    next_token: int = -1


class BatchDecoder:
    """Owns a context with ``n_seq_max`` sequences over an already loaded ``llama_model``."""

    def __init__(self, llama, n_seq: int, n_ctx: int, n_threads: int, n_batch: int = 512) -> None:
        import llama_cpp as lc

        self.lc = lc
        self.llama = llama  # keeps the model alive and provides the tokenizer
        model = llama._model.model
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.kv_unified = True  # sequences can share the cells of a common prefix
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.no_perf = True
        self.ctx = lc.llama_init_from_model(model, params)
        if not self.ctx:
            raise RuntimeError(
                f"llama.cpp could not create a context with {n_seq} sequences and n_ctx {n_ctx}"
            )
        self.mem = lc.llama_get_memory(self.ctx)
        self.vocab = lc.llama_model_get_vocab(model)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.n_seq, self.n_ctx, self.n_batch = n_seq, n_ctx, n_batch
        self.batch = lc.llama_batch_init(n_batch, 0, n_seq)
        self._piece = ctypes.create_string_buffer(256)

    # -- low-level helpers ---------------------------------------------------------------------
    def _add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        b = self.batch
        k = b.n_tokens
        b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = token, pos, 1, logits
        b.seq_id[k][0] = seq
        b.n_tokens = k + 1
        return k

    def _decode(self) -> None:
        rc = self.lc.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise RuntimeError(
                f"llama_decode failed with code {rc} (KV cache of {self.n_ctx} cells full?)"
            )

    def _pick(self, k: int, temperature: float, rng: np.random.Generator) -> int:
        logits = np.ctypeslib.as_array(
            self.lc.llama_get_logits_ith(self.ctx, k), shape=(self.n_vocab,)
        )
        if temperature <= 0:
            return int(logits.argmax())
        top = np.argpartition(logits, -40)[-40:]  # top-40 sampling for the retry path
        z = logits[top] / temperature
        p = np.exp(z - z.max())
        return int(top[rng.choice(len(top), p=p / p.sum())])

    def _text_of(self, token: int) -> bytes:
        n = self.lc.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, False)
        return self._piece.raw[: max(n, 0)]

    def _prefill(self, entries: list[tuple[int, int, int, bool]], on_logits=None) -> None:
        """Evaluate (seq, pos, token, wants_logits) entries in chunks of ``n_batch``; after each
        chunk, ``on_logits(seq, index)`` is called for the entries that asked for logits (they
        are only valid until the next decode)."""
        for start in range(0, len(entries), self.n_batch):
            self.batch.n_tokens = 0
            chunk = entries[start : start + self.n_batch]
            for seq, pos, token, want in chunk:
                self._add(token, pos, seq, want)
            self._decode()
            if on_logits is not None:
                for k, (seq, _, _, want) in enumerate(chunk):
                    if want:
                        on_logits(seq, k)

    # -- public --------------------------------------------------------------------------------
    def generate(
        self,
        prompts: list[str],
        max_tokens: int,
        stop: tuple[str, ...],
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[tuple[str, int, int, str]]:
        """Complete up to ``n_seq`` prompts together.

        Returns:
            Per prompt: (text, prompt tokens, generated tokens, finish reason).
        """
        if len(prompts) > self.n_seq:
            raise ValueError(f"{len(prompts)} prompts exceed the {self.n_seq} parallel sequences")
        lc, rng = self.lc, np.random.default_rng(seed)
        seqs = [
            _Seq(self.llama.tokenize(p.encode("utf-8"), add_bos=True, special=False))
            for p in prompts
        ]
        need = sum(len(s.tokens) + max_tokens for s in seqs)
        if need > self.n_ctx:
            raise ValueError(f"batch needs {need} KV cells, the context has {self.n_ctx}")
        lc.llama_memory_clear(self.mem, True)
        leaders, follows = _plan_sharing([s.tokens for s in seqs])
        shared = 0
        if len(leaders) > 1:
            shared = _common_prefix([seqs[i].tokens for i in leaders])
            shared = min(shared, min(len(seqs[i].tokens) for i in leaders) - 1)
            shared = shared if shared >= MIN_SHARED_PREFIX else 0
        if shared:  # the header every leader shares: evaluate once, share the cells
            lead = leaders[0]
            self._prefill([(lead, i, t, False) for i, t in enumerate(seqs[lead].tokens[:shared])])
            for j in leaders[1:]:
                lc.llama_memory_seq_cp(self.mem, lead, j, -1, -1)

        def first_token(seq: int, k: int) -> None:
            seqs[seq].next_token = self._pick(k, temperature, rng)

        entries: list[tuple[int, int, int, bool]] = []
        for j in leaders:
            toks = seqs[j].tokens
            entries += [(j, i, toks[i], i == len(toks) - 1) for i in range(shared, len(toks))]
        self._prefill(entries, first_token)
        entries = []
        for j, (src, length) in follows.items():  # e.g. the negative prompt after its positive
            lc.llama_memory_seq_cp(self.mem, src, j, 0, length)
            toks = seqs[j].tokens
            entries += [(j, i, toks[i], i == len(toks) - 1) for i in range(length, len(toks))]
        for s in seqs:
            s.pos = len(s.tokens)
        self._prefill(entries, first_token)
        live = list(range(len(seqs)))
        while live:
            still = []
            for j in live:
                s = seqs[j]
                if lc.llama_vocab_is_eog(self.vocab, s.next_token):
                    s.finish = "stop"
                    continue
                s.text += self._text_of(s.next_token)
                s.generated += 1
                decoded = s.text.decode("utf-8", "ignore")
                if any(x in decoded for x in stop):
                    s.finish = "stop"
                elif s.generated >= max_tokens:
                    s.finish = "length"
                else:
                    still.append(j)
            live = still
            if not live:
                break
            self.batch.n_tokens = 0
            for j in live:
                self._add(seqs[j].next_token, seqs[j].pos, j, True)
                seqs[j].pos += 1
            self._decode()
            for k, j in enumerate(live):
                seqs[j].next_token = self._pick(k, temperature, rng)
        out = []
        for s in seqs:
            text = s.text.decode("utf-8", "ignore")
            cut = min((text.index(x) for x in stop if x in text), default=len(text))
            out.append((text[:cut], len(s.tokens), s.generated, s.finish or "stop"))
        return out

    def close(self) -> None:
        if self.ctx:
            self.lc.llama_batch_free(self.batch)
            self.lc.llama_free(self.ctx)
            self.ctx = None


def _common_prefix(token_lists: list[list[int]]) -> int:
    first = token_lists[0]
    n = min(len(t) for t in token_lists)
    for i in range(n):
        tok = first[i]
        if any(t[i] != tok for t in token_lists[1:]):
            return i
    return n


def _plan_sharing(token_lists: list[list[int]]) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Split prompts into leaders (prefilled themselves) and followers that copy the longest
    prefix they share with an earlier leader: ``{follower: (leader, shared length)}``."""
    leaders: list[int] = []
    follows: dict[int, tuple[int, int]] = {}
    for j, toks in enumerate(token_lists):
        best, best_len = -1, 0
        for i in leaders:
            n = _common_prefix([token_lists[i], toks])
            if n > best_len:
                best, best_len = i, n
        best_len = min(best_len, len(toks) - 1)
        if best >= 0 and best_len >= MIN_SHARED_PREFIX * 4:
            follows[j] = (best, best_len)
        else:
            leaders.append(j)
    return leaders, follows
