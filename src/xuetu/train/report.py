"""After training: base against tuned on the validation split (perplexity, ROUGE-L, BLEU), as a table
and as report.md in the run folder. (The evaluate issue goes much further.)"""

from __future__ import annotations

import json
import math

import torch

from xuetu.notify import say
from xuetu.data.record import Record
from xuetu.data.template import tokenize_for_training
from xuetu.metrics import bleu, rouge_l
from xuetu.train.packing import collate, one_per_sequence


def _load(ref):
    from xuetu import models
    from xuetu.models.weights import causal_lm

    holder = models.resolve(ref.base) if ref.base else ref
    model = causal_lm(holder.hf_dir, dtype=torch.float32)
    if ref.adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, ref.adapter_dir)
    return model.eval()


def perplexity(model, tokenizer, records: list[Record], max_length: int) -> float:
    examples = [tokenize_for_training(tokenizer, r, max_length) for r in records]
    seqs = [s for s in one_per_sequence(examples) if any(x != -100 for x in s.labels)]
    total = count = 0.0
    with torch.no_grad():
        for i in range(0, len(seqs), 8):
            batch = collate(seqs[i:i + 8], tokenizer.pad_token_id, torch.float32, four_d=False)
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
            n = float((batch["labels"][:, 1:] != -100).sum())
            total, count = total + float(out.loss) * n, count + n
    return math.exp(total / max(count, 1))


def generate_answers(model, tokenizer, records: list[Record], max_new_tokens: int, batch_size: int = 16) -> list[str]:
    """Greedy answers to each record's last question, batched with left padding."""
    prompts = []
    for r in records:
        messages = ([{"role": "system", "content": r.system}] if r.system else []) + r.messages[:-1]
        prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    answers = []
    try:
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                enc = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=_end_ids(tokenizer))
                for row in out[:, enc["input_ids"].shape[1]:]:
                    answers.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    finally:
        tokenizer.padding_side = side
    return answers


def _end_ids(tokenizer) -> list[int]:
    vocab = tokenizer.get_vocab()
    ids = {tokenizer.eos_token_id} | {vocab[t] for t in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>") if t in vocab}
    return sorted(i for i in ids if i is not None)


def compare_base_and_tuned(run, base_ref, tuned_ref, val_records: list[Record], tokenizer, args,
                           progress: bool = True) -> dict:
    records = [r for r in val_records if not r.is_text and r.messages and r.messages[-1]["role"] == "assistant"]
    records = records[: args.eval_examples]
    if not records:
        return {}
    references = [r.messages[-1]["content"] for r in records]
    longest = max(len(tokenizer(x, add_special_tokens=False)["input_ids"]) for x in references)
    max_new = min(256, int(longest * 1.5) + 8)
    rows = {}
    for label, ref in (("base", base_ref), ("tuned", tuned_ref)):
        if progress:
            say(f"evaluating {label} model on {len(records)} validation examples…")
        model = _load(ref)
        answers = generate_answers(model, tokenizer, records, max_new)
        rows[label] = {"model": ref.name, "perplexity": perplexity(model, tokenizer, records, args.max_length),
                       "rouge_l": rouge_l(answers, references), "bleu": bleu(answers, references), "answers": answers}
        del model
    lines = [f"# {tuned_ref.name}: base against tuned", "",
             f"{len(records)} validation examples; greedy answers up to {max_new} tokens.", "",
             "| model | perplexity ↓ | ROUGE-L ↑ | BLEU ↑ |", "|---|---:|---:|---:|"]
    for label in ("base", "tuned"):
        r = rows[label]
        lines.append(f"| {label}: {r['model']} | {r['perplexity']:.2f} | {r['rouge_l']:.3f} | {r['bleu']:.1f} |")
    lines += ["", "## Examples", ""]
    for rec, ref, a, b in list(zip(records, references, rows["base"]["answers"], rows["tuned"]["answers"]))[:5]:
        lines += [f"**Q:** {rec.messages[-2]['content']}", "", f"- reference: {ref}", f"- base: {a}", f"- tuned: {b}", ""]
    (run.path / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (run.path / "report.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    if progress:
        say("\n".join(lines[4:8]))
    return rows
