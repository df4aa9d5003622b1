"""Perplexity of a causal LM over texts, by sliding windows, as in Hugging Face's guide "Perplexity of
fixed-length models".

Each text is tokenized (with the BOS token when the tokenizer adds one normally) and cut into windows of
`max_length` tokens that start `stride` tokens apart; a window scores only the tokens the previous window
did not, so every token after the first is scored exactly once, with up to `max_length - stride` tokens
of context before it. `stride` is held below `max_length` so that each window's first scored token has
one token of context at least (the guide's `stride == max_length` leaves those unscored).
Windows from all texts are batched with right padding, so positions stay those of an unpadded run.
The corpus perplexity is exp of the mean negative log-likelihood per token over all scored tokens;
`per_text` holds each text's own perplexity (NaN for a text too short to score).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xuetu.errors import XuetuError


@dataclass
class PerplexityResult:
    perplexity: float
    tokens: int
    """tokens scored (a text of n tokens scores n - 1)"""
    nll: float
    """mean negative log-likelihood per scored token, in nats"""
    per_text: list[float] = field(default_factory=list)
    skipped: int = 0
    """texts shorter than 2 tokens"""


def model_max_length(model, tokenizer=None) -> int:
    """The longest window the model takes: the tokenizer's model_max_length capped by max_position_embeddings."""
    limits = [getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limits = [int(n) for n in limits if n and n < 10**8]  # tokenizers without a limit say 1e30
    return min(limits) if limits else 2048


def _adds_bos(tokenizer) -> bool:
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    return tokenizer("a")["input_ids"][:1] == [bos] and plain[:1] != [bos]


def windows(n: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) of each window over n tokens."""
    out, prev_end = [], 0
    for begin in range(0, n, stride):
        end = min(begin + max_length, n)
        out.append((begin, end, max(prev_end, 1)))
        prev_end = end
        if end == n:
            break
    return out


def score_windows(model, tokenizer, encoded: list[list[int]], work: list[tuple[int, int, int, int]],
                  batch_size: int = 4, progress: bool = True, desc: str = "perplexity") -> tuple[list[float], list[int]]:
    """Negative log-likelihood summed per sequence, and the count of tokens scored, over `work`: windows
    (sequence, begin, end, first scored position) with first > begin, each scoring positions first..end-1
    given the window's tokens before them. Windows are batched with right padding, similar lengths together."""
    import torch
    from tqdm import tqdm

    work = sorted(work, key=lambda w: w[2] - w[1])  # similar lengths: little padding
    nll, count = [0.0] * len(encoded), [0] * len(encoded)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode(), tqdm(total=len(work), disable=not progress, desc=desc) as bar:
        for b in range(0, len(work), batch_size):
            rows = work[b:b + batch_size]
            width = max(end - begin for _, begin, end, _ in rows)
            seqs = [encoded[t][begin:end] for t, begin, end, _ in rows]
            batch = torch.tensor([x + [pad] * (width - len(x)) for x in seqs], device=device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in seqs], device=device)
            logits = model(input_ids=batch, attention_mask=mask).logits
            off = logits.shape[1] - width  # prompt-tuned adapters prepend virtual tokens
            for r, (t, begin, end, first) in enumerate(rows):
                s, e = first - begin, end - begin  # scored positions within the window
                logp = torch.log_softmax(logits[r, off + s - 1:off + e - 1].float(), dim=-1)
                nll[t] -= logp.gather(1, batch[r, s:e, None]).sum().item()
                count[t] += e - s
            bar.update(len(rows))
    return nll, count


def perplexity(model, tokenizer, texts: list[str], max_length: int = 1024, stride: int = 512, batch_size: int = 4,
               progress: bool = True) -> PerplexityResult:
    """Corpus and per-text perplexity by sliding windows (max_length capped by `model_max_length`)."""
    max_length = min(max_length, model_max_length(model, tokenizer))
    if max_length < 2 or stride < 1:
        raise XuetuError(f"max_length must be 2 or more and stride 1 or more (got {max_length}, {stride})")
    stride = min(stride, max_length - 1)
    bos = [tokenizer.bos_token_id] if _adds_bos(tokenizer) else []
    raw = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    encoded = [bos + list(x) for x in raw]
    work = [(t, *w) for t, x in enumerate(encoded) if len(x) >= 2 for w in windows(len(x), max_length, stride)]
    if not work:
        raise XuetuError("no text to score: each one is shorter than 2 tokens")
    nll, count = score_windows(model, tokenizer, encoded, work, batch_size, progress)
    total, tokens = sum(nll), sum(count)
    per_text = [math.exp(x / c) if c else float("nan") for x, c in zip(nll, count)]
    skipped = sum(len(x) < 2 for x in encoded)
    return PerplexityResult(math.exp(total / tokens), tokens, total / tokens, per_text, skipped)
