"""Check an exported GGUF against the model it came from, before it is added to the store.

The source runs on transformers (with its PEFT adapter, if any, unmerged), the export on llama.cpp,
exactly as `xuetu run` would load it. Four checks:
- chat template: every test conversation renders to the same bytes on both sides;
- tokenizer: the same token ids for a mixed English / Chinese / digits / code text;
- next token: teacher-forced over a fixed text, how often both pick the same top-1 token
  (>= 98% for f16/bf16/f32, >= 95% for q8_0, >= 80% for 4-bit). A position where the source's own top two
  are within 0.1 logits is a tie and counts as agreeing whichever the export picks: quantisation noise
  flips coin tosses, and those are not a worse model. The plain rate and the mean KL are reported too;
- greedy answers (f16/bf16/f32 only): most prompts give the same tokens; the first difference is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xuetu.export.template import CHECKS

TEXT = (
    "Large language models learn from text. A small model can be fine-tuned on your own data with LoRA, which adds "
    "two small matrices to each layer and trains only those. After training, the adapter can be merged into the "
    "weights and exported to GGUF, the format llama.cpp and Ollama read. 大模型就像一个聪明的孩子：先通过大量阅读学会"
    "语言，再通过微调学会具体的本领，最后部署出去为大家服务。In 2024, 12,345 students asked 678 questions; "
    "the answer to 17 * 23 is 391.\n\ndef square(x):\n    return x ** 2\n\nprint(square(12))\n"
    "Question: What is the capital of France?\nAnswer: The capital of France is Paris, a city on the Seine."
)
PROMPTS = ["Name the capital of France.", "What is 2 + 3?", "Write one sentence about the sea.",
           "用一句话介绍北京。", "List three colours."]
THRESHOLDS = {"F32": 0.98, "F16": 0.98, "BF16": 0.98, "Q8_0": 0.95, "Q4_0": 0.80, "Q4_1": 0.80}
EXACT = ("F32", "F16", "BF16")
TIE = 0.1  # logits: two tokens this close in the source are a tie (probability ratio > 0.9)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Report:
    precision: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def text(self) -> str:
        lines = [f"verification ({self.precision} against the source on transformers):"]
        lines += [f"  {'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"precision": self.precision, "ok": self.ok,
                "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks]}


def precision(gguf_file: Path) -> str:
    """The lowest-precision type among a GGUF's matrices (what decides how close it can be)."""
    from gguf import GGMLQuantizationType

    from xuetu.models.gguf_header import read_header

    order = ["Q4_0", "Q4_1", "Q8_0", "BF16", "F16", "F32"]
    kinds = {GGMLQuantizationType(t.type).name for t in read_header(gguf_file).tensors if len(t.shape) > 1}
    return next((k for k in order if k in kinds), sorted(kinds)[0] if kinds else "F32")


def agreement(src, exp, tie: float = TIE) -> tuple[float, float, float]:
    """(plain top-1 agreement, agreement counting source ties, mean KL(source || export)) over positions.

    Where the source itself scores its top token and the export's pick within `tie` logits of each other
    (a probability ratio above 0.9), it has no real preference between them, and either choice agrees with it.
    """
    import numpy as np

    mine, theirs = src.argmax(-1), exp.argmax(-1)
    rows = np.arange(len(src))
    tied = src[rows, mine] - src[rows, theirs] < tie
    p = src - src.max(-1, keepdims=True)
    p = p - np.log(np.exp(p).sum(-1, keepdims=True))
    q = exp - exp.max(-1, keepdims=True)
    q = q - np.log(np.exp(q).sum(-1, keepdims=True))
    kl = float((np.exp(p) * (p - q)).sum(-1).mean())
    return float((mine == theirs).mean()), float(((mine == theirs) | tied).mean()), kl


def _first_diff(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def load_source(ref):
    """The source as `xuetu run --engine transformers` loads it (base + unmerged adapter), fp32 on the CPU."""
    from xuetu.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(ref, device="cpu", dtype="float32")
    return engine.model, engine.tokenizer


def check_template(llm, tok) -> Check:
    """The chat template, as the llama.cpp engine renders it (the Jinja template stored in the GGUF)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if tok.chat_template is None:
        return Check("chat template", template is None, "the source has none"
                     + ("" if template is None else ", but the export has one"))
    if template is None:
        return Check("chat template", False, "the export has no chat template")
    piece = lambda t: llm.detokenize([t], special=True).decode("utf-8", "replace") if t >= 0 else ""  # noqa: E731
    fmt = Jinja2ChatFormatter(template=template, eos_token=piece(llm.token_eos()), bos_token=piece(llm.token_bos()))
    bad = []
    for conv in CHECKS:
        want = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        got = fmt(messages=conv).prompt
        if want != got:
            at = _first_diff(want, got)
            bad.append(f"{want[max(0, at - 15):at + 15]!r} became {got[max(0, at - 15):at + 15]!r} (char {at})")
    return Check("chat template", not bad, f"{len(CHECKS) - len(bad)}/{len(CHECKS)} conversations "
                 "byte-identical" + (f"; first difference: {bad[0]}" if bad else ""))


def check_tokenizer(llm, tok, ids: list[int]) -> Check:
    """The export's tokenizer splits TEXT into the source's ids."""
    theirs = llm.tokenize(TEXT.encode("utf-8"), add_bos=False, special=False)
    same = theirs == ids
    at = next((i for i, (a, b) in enumerate(zip(ids, theirs)) if a != b), min(len(ids), len(theirs)))
    return Check("tokenizer", same, f"{len(ids)} tokens identical" if same else
                 f"token {at} differs ({len(ids)} vs {len(theirs)} tokens): "
                 f"{tok.decode(ids[at:at + 3])!r} vs {llm.detokenize(theirs[at:at + 3]).decode('utf-8', 'replace')!r}")


def check_agreement(llm, model, ids: list[int], prec: str) -> Check:
    """Next-token agreement, teacher-forced over the same ids."""
    import numpy as np
    import torch

    with torch.no_grad():
        src = model(torch.tensor([ids])).logits[0].float().numpy()
    llm.reset()
    llm.eval(ids)
    exp = np.asarray(llm.scores[:len(ids)])
    plain, agree, kl = agreement(src, exp)
    need = THRESHOLDS.get(prec, 0.8)
    return Check("next-token agreement", agree >= need,
                 f"{agree:.1%} of {len(ids)} positions pick the same top-1 token, ties in the source "
                 f"counted as agreeing (need {need:.0%}; {plain:.1%} without; "
                 f"mean KL {kl:.4f} nats)")


def _greedy_tokens(llm, model, tok, prompt: str, new_tokens: int) -> tuple[list[int], list[int]]:
    """(the source's, the export's) greedy continuation of one prompt."""
    import torch

    p_ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                    tokenize=True, return_dict=True)["input_ids"] if tok.chat_template else \
        tok(prompt).input_ids
    with torch.no_grad():
        out = model.generate(torch.tensor([p_ids]), attention_mask=torch.ones(1, len(p_ids), dtype=torch.long),
                             max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id or 0)
    want = out[0, len(p_ids):].tolist()
    got = []
    for t in llm.generate(p_ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        got.append(t)
        if len(got) >= len(want) or t in (llm.token_eos(),):
            break
    return want, got


def check_greedy(llm, model, tok, prec: str, new_tokens: int) -> Check:
    """Greedy answers to PROMPTS: the same tokens (required only at the exact precisions)."""
    same_n, notes = 0, []
    for prompt in PROMPTS:
        want, got = _greedy_tokens(llm, model, tok, prompt, new_tokens)
        n = min(len(want), len(got))
        first = next((i for i in range(n) if want[i] != got[i]), None)
        if first is None and len(want) == len(got):
            same_n += 1
        else:
            notes.append(f"{prompt!r} differs from token {first if first is not None else n}")
    need_same = len(PROMPTS) // 2 + 1
    exact = prec in EXACT
    return Check("greedy answers", same_n >= need_same or not exact,
                 f"{same_n}/{len(PROMPTS)} prompts give the same {new_tokens} tokens"
                 + (f" (need {need_same})" if exact else " (informational at this precision)")
                 + (f"; {notes[0]}" if notes else ""))


def verify(source_ref, gguf_file: Path, adapter_file: Path | None = None, new_tokens: int = 24,
           progress: bool = True) -> Report:
    """Compare the export with its source: chat template, tokenizer, next-token agreement, greedy answers."""
    from llama_cpp import Llama
    from tqdm.auto import tqdm

    prec = precision(gguf_file)
    report = Report(prec)
    model, tok = load_source(source_ref)
    ids = tok(TEXT, add_special_tokens=False).input_ids
    llm = Llama(model_path=str(gguf_file), lora_path=str(adapter_file) if adapter_file else None, logits_all=True,
                n_ctx=max(512, len(ids) + 64), n_threads=None, verbose=False)
    steps = (lambda: check_template(llm, tok), lambda: check_tokenizer(llm, tok, ids),
             lambda: check_agreement(llm, model, ids, prec), lambda: check_greedy(llm, model, tok, prec, new_tokens))
    bar = tqdm(total=len(steps), desc="verifying export", unit="check", disable=not progress)
    try:
        for step in steps:
            report.checks.append(step())
            bar.update()
    finally:
        bar.close()
        llm.close()
    return report
