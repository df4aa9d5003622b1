"""Constrained decoding for JSON answers (OpenAI's response_format, Ollama's format), via llguidance.

llguidance is the grammar engine llama.cpp and vLLM use; it masks, at each step, every token
that could not continue a valid answer, so a small model cannot produce broken JSON.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache

import numpy as np
import torch

from xuetu.errors import XuetuError

_lock = threading.Lock()
LAYOUT = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}
"""How constrained JSON is written: the layout models see most (json.dumps'), so a small model copies values
from its prompt as it would unconstrained, and cannot spend its budget on whitespace."""


def grammar_for(fmt: str | dict) -> str:
    import llguidance

    schema = {"type": "object"} if fmt == "json" else fmt
    if "x-guidance" not in schema:  # JSON laid out as json.dumps does, with no free whitespace to loop in
        schema = {**schema, "x-guidance": LAYOUT}
    try:
        return llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema))
    except (ValueError, TypeError) as e:
        raise XuetuError(f"invalid JSON schema: {e}") from None


@lru_cache(maxsize=8)
def _ll_tokenizer(tokenizer, n_vocab: int, eos: tuple[int, ...]):  # ~1 s to build, so cached per tokenizer
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tokenizer, n_vocab=n_vocab, eos_token=list(eos))


class JsonConstraint:
    """Per-sequence state: which tokens may come next, and whether the JSON value is complete."""

    def __init__(self, tokenizer, fmt: str | dict, n_vocab: int, eos_ids: set[int]):
        import llguidance

        with _lock:
            ll_tok = _ll_tokenizer(tokenizer, n_vocab, tuple(sorted(eos_ids)))
        self.matcher = llguidance.LLMatcher(ll_tok, grammar_for(fmt), log_level=0)
        if self.matcher.is_error():
            raise XuetuError(f"cannot use that format: {self.matcher.get_error()}")
        self.n_vocab = n_vocab

    def mask_(self, logits: torch.Tensor) -> None:
        """Set the logits of forbidden tokens to -inf, in place. logits (V,) on any device."""
        allowed = np.frombuffer(self.matcher.compute_logit_bias(), dtype=np.uint8)[: logits.shape[-1]]
        forbid = torch.from_numpy(allowed == 0).to(logits.device)
        if forbid.shape[0] < logits.shape[-1]:  # vocab padding beyond the tokenizer
            forbid = torch.cat([forbid, torch.ones(logits.shape[-1] - forbid.shape[0], dtype=torch.bool,
                                                   device=logits.device)])
        logits.masked_fill_(forbid, float("-inf"))

    def accept(self, token: int) -> None:
        self.matcher.consume_token(token)

    @property
    def finished(self) -> bool:
        return self.matcher.is_stopped() or self.matcher.is_error()


class LlamaCppConstraint:
    """The same constraint for llama.cpp, as a logits processor: llguidance computes the allowed tokens from the
    GGUF's own vocabulary. Far cheaper per token than llama.cpp's GBNF sampler, which checks the whole vocabulary
    against the grammar at each step (benchmarks/tools.py)."""

    def __init__(self, ll_tokenizer, fmt: str | dict, n_vocab: int):
        import llguidance

        self.matcher = llguidance.LLMatcher(ll_tokenizer, grammar_for(fmt), log_level=0)
        if self.matcher.is_error():
            raise XuetuError(f"cannot use that format: {self.matcher.get_error()}")
        self.n_vocab = n_vocab

    def __call__(self, input_ids, scores: np.ndarray) -> np.ndarray:
        allowed = np.frombuffer(self.matcher.compute_logit_bias(), dtype=np.uint8)[: scores.shape[-1]]
        scores[: allowed.shape[0]][allowed == 0] = -np.inf
        scores[allowed.shape[0]:] = -np.inf
        return scores

    def accept(self, token: int) -> None:
        self.matcher.consume_token(token)
