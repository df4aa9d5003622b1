"""Multiple-choice evaluation by log-likelihood, over MMLU, C-Eval and CMMLU style CSV files.

Zero-shot and plain text completion (no chat template), as lm-evaluation-harness scores MMLU: one forward
pass per question, and the prediction is the option letter the model finds likeliest as the next token.
English questions end in "Answer:" and the letter token is " A" (with its space) when the tokenizer holds
that as one token, else "A"; Chinese ones end in "答案：" and the letter is "A". Each letter's id is read
off the tokenizer in context: `tail + letter` must encode as `tail`'s ids plus exactly one token, so a
SentencePiece "▁A" or a merge across the boundary cannot slip in unnoticed. A question is Chinese (C-Eval,
CMMLU) when its Chinese characters outnumber its Latin words.

Batches are right-padded, so every real token keeps its position; the logits are read at each row's own
last real token (and only there: `logits_to_keep` spares the full vocabulary projection).
The subject comes from the file name (`abstract_algebra_test.csv` -> "abstract algebra"). In the Chinese
prompt it appears only when it is Chinese: real C-Eval and CMMLU files carry English names.
"""

from __future__ import annotations

import csv
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError

SAMPLES = Path(__file__).parent / "samples"
LETTERS = "ABCDEF"
LAYOUTS = ("MMLU: no header, columns question,A,B,C,D,answer; C-Eval: id,question,A,B,C,D,answer[,explanation]; "
           "CMMLU: ,Question,A,B,C,D,Answer (E/F columns may follow D)")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_LATIN = re.compile(r"[A-Za-z]+")


@dataclass
class Question:
    question: str
    choices: dict[str, str]
    answer: str
    subject: str | None = None
    source: str = ""


@dataclass
class ChoiceResult:
    accuracy: float
    predictions: list[str]
    correct: list[bool]
    per_subject: dict[str | None, dict] = field(default_factory=dict)
    n: int = 0


def _subject(path: Path) -> str | None:
    return re.sub(r"_(test|val|dev|train)$", "", path.stem).replace("_", " ").strip() or None


def _options(row: list[str], where: str) -> int:
    """The option count of a C-Eval or CMMLU header row; raises on any other header."""
    cells = [c.strip().lower() for c in row]
    end = cells.index("answer") if "answer" in cells else 0
    n = end - 2
    if not (cells[:2] in (["id", "question"], ["", "question"]) and 2 <= n <= 6 and cells[2:end] == list("abcdef"[:n])
            and cells[end + 1:] in ([], ["explanation"] if cells[0] == "id" else [])):
        hint = " C-Eval's test files hold no answers: use its val files." if not end else ""
        raise XuetuError(f"{where}: unknown header {','.join(row)!r}", f"Accepted layouts: {LAYOUTS}.{hint}")
    return n


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line where the record starts, cells) of each non-blank record."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader, rows, start = csv.reader(fh), [], 1
        for row in reader:
            if any(c.strip() for c in row):
                rows.append((start, row))
            start = reader.line_num + 1
    return rows


def read_csv(path: str | Path) -> list[Question]:
    """Questions of one CSV file, or of every *.csv in a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise XuetuError(f"no .csv files in {path}")
        return [q for f in files for q in read_csv(f)]
    if not path.is_file():
        raise XuetuError(f"no such file: {path}", "Give a CSV file or a folder of them.")
    rows = _rows(path)
    if not rows:
        raise XuetuError(f"{path} is empty")
    first = rows[0][1]
    cells = [c.strip().lower() for c in first]
    if cells[-1].upper() in tuple(LETTERS) and "question" not in cells[:2]:  # MMLU: no header, a question first
        col, n = 1, len(first) - 2
        names = "question," + ",".join(LETTERS[:n]) + ",answer" if n >= 2 else "question,A,B,C,D,answer"
        if not 2 <= n <= 6:
            raise XuetuError(f"{path.name}:{rows[0][0]} has {len(first)} columns, expected 6 ({names})",
                             f"Accepted layouts: {LAYOUTS}.")
    else:
        col, n, names, rows = 2, _options(first, f"{path.name}:{rows[0][0]}"), ",".join(first), rows[1:]
    letters, subject, out = LETTERS[:n], _subject(path), []
    for line, row in rows:
        where = f"{path.name}:{line}"
        if len(row) != len(first):
            raise XuetuError(f"{where} has {len(row)} columns, expected {len(first)} ({names})")
        answer = row[col + n].strip().upper()
        if answer not in tuple(letters):
            raise XuetuError(f"{where}: the answer {row[col + n]!r} is not one of {', '.join(letters)}")
        choices = {k: row[col + i].strip() for i, k in enumerate(letters)}
        out.append(Question(row[col - 1].strip(), choices, answer, subject, where))
    return out


def is_chinese(q: Question) -> bool:
    text = q.question + "".join(q.choices.values())
    return len(_HAN.findall(text)) > len(_LATIN.findall(text))


def prompt(q: Question) -> str:
    options = "".join(f"\n{k}. {v}" for k, v in q.choices.items())
    if is_chinese(q):
        about = f"关于{q.subject}的" if q.subject and _HAN.search(q.subject) else ""
        return f"以下是{about}单项选择题，请直接给出正确答案的选项。\n\n{q.question}{options}\n答案："
    about = f" about {q.subject}" if q.subject else ""
    return f"The following is a multiple choice question{about}.\n\n{q.question}{options}\nAnswer:"


def letter_ids(tokenizer, chinese: bool) -> dict[str, int]:
    """The token id of each letter as the next token after "Answer:" (" A" or "A") or "答案：" ("A")."""
    tail = "答案：" if chinese else "Answer:"
    base = tokenizer.encode(tail, add_special_tokens=False)
    out = {}
    for letter in LETTERS:
        for cont in ([letter] if chinese else [" " + letter, letter]):
            ids = tokenizer.encode(tail + cont, add_special_tokens=False)
            if ids[:len(base)] == base and len(ids) == len(base) + 1:
                out[letter] = ids[-1]
                break
        else:
            raise XuetuError(f"the tokenizer has no single token for the letter {letter!r} after {tail!r}")
    if len(set(out.values())) != len(out):
        raise XuetuError("the tokenizer maps two option letters to one token")
    return out


def _keeps_logits(model) -> bool:
    if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
        return False  # prompt tuning prepends virtual tokens: positions shift
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def _last_logits(model, seqs: list[list[int]], pad: int, keep: bool):
    """Next-token logits after each sequence's last token, (rows, vocab), from one right-padded batch."""
    import torch

    device, width = next(model.parameters()).device, max(map(len, seqs))
    batch = torch.tensor([x + [pad] * (width - len(x)) for x in seqs], device=device)
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in seqs], device=device)
    last = mask.sum(1) - 1
    kept = torch.unique(last) if keep else None  # sorted positions: only these reach the vocabulary projection
    logits = model(input_ids=batch, attention_mask=mask, **({"logits_to_keep": kept} if keep else {})).logits
    pos = torch.searchsorted(kept, last) if keep else last + logits.shape[1] - width
    return logits[torch.arange(len(seqs), device=device), pos].float()


def score(model, tokenizer, questions: list[Question], batch_size: int = 8, progress: bool = True) -> ChoiceResult:
    """Zero-shot accuracy: for each question, the option letter with the highest next-token log-probability."""
    import torch
    from tqdm import tqdm

    from xuetu.evaluate.perplexity import model_max_length

    if not questions:
        raise XuetuError("no questions to score")
    chinese = [is_chinese(q) for q in questions]
    ids = {zh: letter_ids(tokenizer, zh) for zh in set(chinese)}
    encoded = [tokenizer(prompt(q))["input_ids"] for q in questions]
    limit = model_max_length(model, tokenizer)
    for q, e in zip(questions, encoded):
        if len(e) > limit:
            raise XuetuError(f"{q.source}: the prompt is {len(e)} tokens but the model holds {limit}")
    order = sorted(range(len(questions)), key=lambda i: len(encoded[i]))  # similar lengths: little padding
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    keep, predictions = _keeps_logits(model), [""] * len(questions)
    with torch.inference_mode(), tqdm(total=len(questions), disable=not progress, desc="scoring") as bar:
        for b in range(0, len(order), batch_size):
            rows = order[b:b + batch_size]
            logits = _last_logits(model, [encoded[i] for i in rows], pad, keep)
            for r, i in enumerate(rows):
                letters = ids[chinese[i]]
                predictions[i] = max(questions[i].choices, key=lambda k: logits[r, letters[k]].item())
            bar.update(len(rows))
    correct = [p == q.answer for p, q in zip(predictions, questions)]
    groups: dict[str | None, list[bool]] = {}
    for q, c in zip(questions, correct):
        groups.setdefault(q.subject, []).append(c)
    per = {s: {"accuracy": sum(cs) / len(cs), "n": len(cs)} for s, cs in groups.items()}
    return ChoiceResult(sum(correct) / len(correct), predictions, correct, per, len(questions))
