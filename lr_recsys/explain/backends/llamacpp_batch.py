"""Batched greedy/sampled decoding of many prompts at once on one llama.cpp context.

llama-cpp-python's high-level API decodes one sequence at a time. This module drives the
low-level API: the prompts' longest common token prefix is evaluated once and copied to every
sequence, a prompt that shares a long prefix with an earlier one (the negative prompt after its
positive) copies that prefix and evaluates only its own suffix, then all live sequences advance
one token per step until each meets an end-of-generation token, a stop string or ``max_tokens``.

Greedy answers are bit-identical to the sequential path (``Llama.create_completion``, whose
consecutive prompts share either no prefix or one of at least ``MIN_SEGMENT`` tokens), so they do
not depend on which prompts were batched together. On llama.cpp's CPU backend that takes four
rules, each found by comparing logits bit for bit on Gemma 3 270M (breaking any one changed 1-5
of 48 answers, logits by up to 0.9):

* weight repacking off (``llamacpp.load_llama``): repacked kernels round the rows of a batch
  differently in tiles of four;
* one KV stream per sequence (``kv_unified = False``): in a unified cache a sequence's cells sit
  among other sequences' cells and its attention sums change. A prefix is shared across streams
  by copying the source stream (``llama_memory_seq_cp`` over the whole stream; a partial
  cross-stream copy is not supported) and dropping the cells past the prefix;
* flash attention off, as in ``Llama``;
* micro-batches shaped like the sequential path's, which evaluates prompts in long pieces and
  generates one token at a time: every prompt piece has at least ``MIN_SEGMENT`` (8) tokens and
  a generation micro-batch at most ``MAX_STEP_SEQS`` (7) sequences. Measured: 29 of 40 random
  cuttings of a prompt with a piece of 1-7 tokens changed its logits, 0 of 80 without one; a
  step of 8-16 sequences changed 24 of 135 sequences' logits, steps of 2-7 none of 57.

So each sequence's prompt piece is its own decode call (with one stream per sequence, llama.cpp
cuts a call holding several sequences into micro-batches with equal token counts per sequence,
pieces of any length); joint calls measured no faster, prompt evaluation being compute-bound.
Sequences are numbered wave by wave (leaders, then followers) so that those still generating
tend to be consecutive ids, one micro-batch per call.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_SEGMENT = 8  # prompt tokens of one sequence per micro-batch, at least (module docstring)
MAX_STEP_SEQS = 7  # sequences per micro-batch of a generation step, at most (module docstring)
MIN_SHARED_PREFIX = 8  # tokens; a shorter common header is not worth a separate decode call
MIN_FOLLOW_PREFIX = 32  # tokens a prompt must share with an earlier one to copy its stream


@dataclass
class _Seq:
    tokens: list[int]
    pos: int = 0
    text: bytes = b""
    generated: int = 0
    finish: str = ""
    next_token: int = -1


@dataclass
class DecodeStats:
    """What the decoder did, summed over ``generate`` calls."""

    prompts: int = 0
    prompt_tokens: int = 0  # every prompt token
    evaluated_tokens: int = 0  # prompt tokens run through the model (the rest were copied)
    followers: int = 0  # prompts that copied a prefix from another prompt's stream
    shared_header_tokens: int = 0  # tokens of common headers evaluated once per group
    decode_steps: int = 0  # generation steps (each one or more llama_decode calls)
    generated: int = 0


class BatchDecoder:
    """Owns a context with ``n_seq`` sequences (one KV stream of ``n_ctx`` cells each) over an
    already loaded ``llama_model``."""

    def __init__(self, llama, n_seq: int, n_ctx: int, n_threads: int, n_batch: int = 512) -> None:
        import llama_cpp as lc

        self.lc = lc
        self.llama = llama  # keeps the model alive and provides the tokenizer
        model = llama._model.model
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx * n_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.kv_unified = False  # one stream per sequence: see the module docstring
        params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as Llama's default
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.no_perf = True
        self.ctx = lc.llama_init_from_model(model, params)
        if not self.ctx:
            raise RuntimeError(
                f"llama.cpp could not create a context with {n_seq} sequences of {n_ctx} cells"
            )
        self.mem = lc.llama_get_memory(self.ctx)
        self.vocab = lc.llama_model_get_vocab(model)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.n_seq = n_seq
        # llama.cpp may round the context up and the batch down; hold to both limits
        self.n_ctx = min(n_ctx, int(lc.llama_n_ctx_seq(self.ctx)))  # cells per sequence
        self.n_batch = min(int(lc.llama_n_batch(self.ctx)), int(lc.llama_n_ubatch(self.ctx)))
        self.batch = lc.llama_batch_init(self.n_batch, 0, 1)
        self._piece = ctypes.create_string_buffer(256)
        self.stats = DecodeStats()

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
                f"llama_decode failed with code {rc} (KV stream of {self.n_ctx} cells full?)"
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

    def _prefill(self, seqs: list[_Seq], spans: list[tuple[int, int]], on_logits=None) -> None:
        """Evaluate the prompt tokens ``seqs[j].tokens[start:]`` of every ``(j, start)`` span, one
        decode call per span (see the module docstring); ``on_logits(j, index)`` is called for
        each prompt's last token right after its call (the logits are valid until the next)."""
        for j, start in spans:
            toks = seqs[j].tokens
            self.stats.evaluated_tokens += len(toks) - start
            for a, b in _pieces(start, len(toks), self.n_batch):
                self.batch.n_tokens = 0
                for i in range(a, b):
                    k = self._add(toks[i], i, j, on_logits is not None and i == len(toks) - 1)
                self._decode()
                if on_logits is not None and b == len(toks):
                    on_logits(j, k)

    def _copy_prefix(self, src: int, dst: int, length: int) -> None:
        """Give sequence ``dst`` the first ``length`` cells of ``src`` (another stream)."""
        self.lc.llama_memory_seq_cp(self.mem, src, dst, -1, -1)  # whole stream, applied lazily
        self.lc.llama_memory_seq_rm(self.mem, dst, length, -1)

    # -- public --------------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        max_tokens: int,
        stop: tuple[str, ...],
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[tuple[str, int, int, str]]:
        """Complete up to ``n_seq`` tokenised prompts (with BOS) together.

        Returns:
            Per prompt, in order: (text, prompt tokens, generated tokens, finish reason).
        """
        if len(prompts) > self.n_seq:
            raise ValueError(f"{len(prompts)} prompts exceed the {self.n_seq} parallel sequences")
        for toks in prompts:
            if len(toks) + max_tokens > self.n_ctx:
                raise ValueError(
                    f"prompt of {len(toks) + max_tokens} tokens (with answer) exceeds the "
                    f"context of {self.n_ctx} per sequence"
                )
        lc, rng = self.lc, np.random.default_rng(seed)
        lc.llama_memory_clear(self.mem, True)
        leaders, follows = _plan_sharing([list(t) for t in prompts])
        waves: list[list[int]] = [leaders]  # a follower comes one wave after its source
        wave_of = dict.fromkeys(leaders, 0)
        for i, (src, _) in follows.items():  # sources come first in the prompt order
            wave_of[i] = wave_of[src] + 1
            if wave_of[i] == len(waves):
                waves.append([])
            waves[wave_of[i]].append(i)
        # sequence ids wave by wave, most tokens to evaluate first (see the module docstring)
        waves = [
            sorted(w, key=lambda i: -len(prompts[i]) + follows.get(i, (0, 0))[1]) for w in waves
        ]
        order = [i for w in waves for i in w]
        seq_of = {i: s for s, i in enumerate(order)}
        seqs = [_Seq(list(prompts[i])) for i in order]  # indexed by sequence id
        st = self.stats
        st.prompts += len(seqs)
        st.prompt_tokens += sum(len(s.tokens) for s in seqs)
        lead = [seq_of[i] for i in leaders]  # 0..len(leaders)-1
        shared = 0
        if len(lead) > 1:
            shared = _common_prefix([seqs[j].tokens for j in lead])
            shared = min(shared, min(len(seqs[j].tokens) for j in lead) - MIN_SEGMENT)
            shared = shared if shared >= MIN_SHARED_PREFIX else 0
        if shared:  # the header every leader shares: evaluate once, copy to the others
            st.shared_header_tokens += shared
            self._prefill([_Seq(seqs[0].tokens[:shared])], [(0, 0)])
            for j in lead[1:]:
                self._copy_prefix(0, j, shared)

        def first_token(j: int, k: int) -> None:
            seqs[j].next_token = self._pick(k, temperature, rng)

        self._prefill(seqs, [(j, shared) for j in lead], first_token)
        for wave in waves[1:]:  # followers, e.g. the negative prompt after its positive
            spans = []
            for i in wave:
                src, length = follows[i]
                length = max(0, min(length, len(prompts[i]) - MIN_SEGMENT))  # a full segment
                if length:  # of its own; the copied cells were evaluated in a full one
                    self._copy_prefix(seq_of[src], seq_of[i], length)
                    st.followers += 1
                spans.append((seq_of[i], length))
            self._prefill(seqs, spans, first_token)
        for s in seqs:
            s.pos = len(s.tokens)
        live = list(range(len(seqs)))
        while True:
            live = [j for j in live if self._advance(seqs[j], max_tokens, stop)]
            if not live:
                break
            st.decode_steps += 1
            n_calls = -(-len(live) // MAX_STEP_SEQS)
            size = -(-len(live) // n_calls)  # balanced calls of at most MAX_STEP_SEQS
            for start in range(0, len(live), size):
                step = live[start : start + size]
                self.batch.n_tokens = 0
                for j in step:
                    self._add(seqs[j].next_token, seqs[j].pos, j, True)
                    seqs[j].pos += 1
                self._decode()
                for k, j in enumerate(step):
                    seqs[j].next_token = self._pick(k, temperature, rng)
        out = []
        for i in range(len(prompts)):
            s = seqs[seq_of[i]]
            st.generated += s.generated
            text = s.text.decode("utf-8", "ignore")
            cut = min((text.index(x) for x in stop if x in text), default=len(text))
            out.append((text[:cut], len(s.tokens), s.generated, s.finish))
        return out

    def _advance(self, s: _Seq, max_tokens: int, stop: tuple[str, ...]) -> bool:
        """Take the sequence's picked token; False once it is finished."""
        if self.lc.llama_vocab_is_eog(self.vocab, s.next_token):
            s.finish = "stop"
            return False
        s.text += self._text_of(s.next_token)
        s.generated += 1
        if any(x in s.text.decode("utf-8", "ignore") for x in stop):
            s.finish = "stop"
        elif s.generated >= max_tokens:
            s.finish = "length"
        return not s.finish

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
    """Split prompts into leaders (evaluated from their start) and followers that copy the
    longest prefix they share with an earlier prompt, leader or follower (the first of equals):
    ``{follower: (source, shared length)}``; a follower keeps at least one token of its own."""
    leaders: list[int] = []
    follows: dict[int, tuple[int, int]] = {}
    for j, toks in enumerate(token_lists):
        best, best_len = -1, 0
        for i in range(j):
            n = _common_prefix([token_lists[i], toks])
            if n > best_len:
                best, best_len = i, n
        best_len = min(best_len, len(toks) - 1)
        if best >= 0 and best_len >= MIN_FOLLOW_PREFIX:
            follows[j] = (best, best_len)
        else:
            leaders.append(j)
    return leaders, follows


def _pieces(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """``[start, end)`` in pieces of at most ``size`` tokens and at least ``MIN_SEGMENT`` (unless
    the whole span is shorter)."""
    out = []
    while end - start > size:
        take = size if end - start - size >= MIN_SEGMENT else end - start - MIN_SEGMENT
        out.append((start, start + take))
        start += take
    return [*out, (start, end)] if end > start else out
