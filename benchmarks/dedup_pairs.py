"""Labelled record pairs for near-duplicate detection, Chinese and English, generated from a seed.

Positives (the same record, to be merged): one character inserted, deleted or substituted; a number
changed; a punctuation mark changed, dropped or added; a word added at the end. Negatives (distinct
records, to be kept): two records from one template that differ in two or more places (two slots such
as name and city, or one slot used twice, as in "exercise 3: ... the steps for exercise 3"; some
templates have a long fixed part, as generated instructions and notices do), hand-written paraphrases,
and unrelated records. A paraphrase counts as a distinct record, as data cleaning usually treats it:
it rewords the sentence (other words, other order). A pure reordering or a one-synonym swap is not in
the set: at the character level it is an edit.

Templates, slot values and paraphrases are in `benchmarks/data/dedup/` (see its README). Records come
from the safety scorer's hand-written benign examples (`xuetu/safety/examples/benign.jsonl`,
the project's own text): short ones (20-60 characters, the hard case) as they are, long ones (120-400)
made by joining a few. The base records are split in halves, dev and test, before any pair is made,
so no record is in both; templates and paraphrases are split by item.

Records from one template that differ in a single place (kind "template_one_place") are made too but
left out of precision and recall: a one-slot change of two or three characters is, at the character
level, the same as a number change or an added word, which are positives. `benchmarks/data.py`
reports how many of them are merged, so the cost is visible.

`choose_on_dev` picks the CJK shingle length and the CJK threshold: the best F0.5 on the Chinese dev
pairs (precision weighs double: a wrong merge drops a distinct record for good, a missed one only
leaves a copy), the higher threshold on a tie. Other records keep 5-grams at 0.8.

    python benchmarks/dedup_pairs.py [--out pairs.jsonl]   # counts per split, language and kind
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np

from xuetu.data.minhash import NGRAM, LSHIndex, MinHasher
from xuetu.data.normalize import normalize

EXAMPLES = Path(__file__).parents[1] / "src/xuetu/safety/examples/benign.jsonl"
POSITIVE_KINDS = ("insert", "delete", "substitute", "number", "punctuation", "trailing_word")
NEGATIVE_KINDS = ("template", "paraphrase", "unrelated")
CJK_NGRAMS = (2, 3, 4, 5)
THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))  # 0.50 ... 0.90
SHORT, LONG = (20, 60), (120, 400)

PUNCT = {"zh": "。，！？、；：", "en": ".,!?;:"}
TRAILING = {"zh": ["好的", "谢谢", "吗", "呢", "，谢谢！", "急"], "en": [" thanks", " please", " ok", " Thanks!", " asap"]}
LETTERS = "abcdefghijklmnopqrstuvwxyz"

DATA = Path(__file__).parent / "data" / "dedup"


def _load_tables() -> tuple[dict, dict, dict, dict]:
    """Templates and slot values per language, number slots (slot -> [low, high]), paraphrase pairs per language."""
    tables = json.loads((DATA / "templates.json").read_text(encoding="utf-8"))
    paraphrases: dict[str, list[tuple[str, str]]] = {"zh": [], "en": []}
    for line in (DATA / "paraphrases.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        paraphrases[row["lang"]].append((row["a"], row["b"]))
    return tables["templates"], tables["slots"], tables["numbers"], paraphrases


TEMPLATES, SLOTS, NUMBER_SLOTS, PARAPHRASES = _load_tables()


def _base_records(lang: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """(dev, test) base texts of one language: the examples, shuffled and halved."""
    texts = sorted({json.loads(line)["text"] for line in EXAMPLES.read_text(encoding="utf-8").splitlines()
                    if json.loads(line)["lang"] == lang})
    rng.shuffle(texts)
    half = len(texts) // 2
    return texts[:half], texts[half:]


def _long_records(texts: list[str], count: int, rng: random.Random, lang: str) -> list[str]:
    sep = "" if lang == "zh" else " "
    out = []
    while len(out) < count:
        parts, size = [], 0
        while size < LONG[0]:
            parts.append(rng.choice(texts))
            size += len(parts[-1]) + len(sep)
        text = sep.join(parts)
        if size <= LONG[1]:
            out.append(text)
    return out


def _is_letter(c: str, lang: str) -> bool:
    return "\u4e00" <= c <= "\u9fff" if lang == "zh" else c.isascii() and c.isalpha()


def _edit(text: str, kind: str, lang: str, rng: random.Random, letters: str) -> str | None:
    """The text with one edit of this kind, or None when the kind does not apply.

    One-character edits touch a letter (a Chinese character in Chinese) and insert or substitute one
    drawn from `letters`, which for Chinese are the characters of the records, as often as they occur.
    """
    if kind in ("insert", "substitute", "delete"):
        where = [i for i, c in enumerate(text) if _is_letter(c, lang)]
        if not where:
            return None
        i = rng.choice(where)
        new = rng.choice(letters)
        if kind == "insert":
            return text[:i] + new + text[i:]
        if kind == "delete":
            return text[:i] + text[i + 1:]
        return text[:i] + new + text[i + 1:] if new != text[i] else None
    if kind == "number":
        numbers = list(re.finditer(r"\d+", text))
        if not numbers:
            return None
        m = rng.choice(numbers)
        value = int(m.group())
        changed = value + rng.choice([-1, 1]) * rng.randint(1, 9)
        return text[:m.start()] + str(abs(changed) if changed != value else value + 1) + text[m.end():]
    if kind == "punctuation":
        marks = [i for i, c in enumerate(text) if c in PUNCT[lang] or c in "，。！？；："]
        if not marks or rng.random() < 0.25:
            return text + rng.choice(PUNCT[lang])
        i = rng.choice(marks)
        if rng.random() < 0.5:
            return text[:i] + text[i + 1:]
        return text[:i] + rng.choice([p for p in PUNCT[lang] if p != text[i]]) + text[i + 1:]
    if kind == "trailing_word":
        return text + rng.choice(TRAILING[lang])
    raise ValueError(kind)


def _fill(template: str, lang: str, rng: random.Random, base: dict | None = None,
          differ: set = frozenset()) -> tuple[str, dict]:
    """The template filled with slot values: `base`'s, except in the slots named in `differ`."""
    values = {}
    for slot in dict.fromkeys(re.findall(r"\{(\w+)\}", template)):
        if base is not None and slot not in differ:
            values[slot] = base[slot]
            continue
        pool_name = slot.rstrip("2")
        while True:
            if pool_name in SLOTS[lang]:
                value = rng.choice(SLOTS[lang][pool_name])
            else:
                low, high = NUMBER_SLOTS[pool_name]
                value = str(rng.randint(low, high))
            if (base is None or value != base[slot]) and value not in values.values():
                break
        values[slot] = value
    return template.format(**values), values


def _template_pair(templates: list[str], lang: str, rng: random.Random, one_place: bool) -> tuple[str, str]:
    """Two records from one template that differ in two or more places (two slots, or one slot used
    twice), or, with one_place, in exactly one place."""
    while True:
        template = rng.choice(templates)
        uses = Counter(re.findall(r"\{(\w+)\}", template))
        single = [slot for slot, n in uses.items() if n == 1]
        if one_place and single:
            differ = {rng.choice(single)}
            break
        if not one_place and sum(uses.values()) >= 2:
            while True:
                differ = set(rng.sample(list(uses), rng.randint(1, len(uses))))
                if sum(uses[slot] for slot in differ) >= 2:
                    break
            break
    a, values = _fill(template, lang, rng)
    return a, _fill(template, lang, rng, values, differ)[0]


def _length(text: str) -> str:
    return "short" if len(text) <= SHORT[1] else "long"


def make_pairs(seed: int = 0, per_kind: int = 24) -> list[dict]:
    """Pairs {"split", "lang", "kind", "length", "label" (1 = duplicate), "a", "b"}; same seed, same pairs.

    "length" is "short" up to 60 characters, "long" above (made records are 120-400; some template
    records are 61-90).
    """
    rng = random.Random(seed)
    pairs = []
    for lang in ("zh", "en"):
        dev, test = _base_records(lang, rng)
        for split, texts in (("dev", dev), ("test", test)):
            short = [t for t in texts if SHORT[0] <= len(t) <= SHORT[1]]
            letters = LETTERS if lang == "en" else "".join(c for t in texts for c in t if _is_letter(c, lang))
            pools = {"short": short, "long": _long_records(texts, per_kind * 2, rng, lang)}

            def add(kind, length, label, a, b):
                pairs.append({"split": split, "lang": lang, "kind": kind, "length": length, "label": label,
                              "a": a, "b": b})

            for kind in POSITIVE_KINDS:
                for length, count in (("short", per_kind), ("long", per_kind // 2)):
                    made = 0
                    while made < count:
                        a = rng.choice(pools[length])
                        b = _edit(a, kind, lang, rng, letters)
                        if b is not None and normalize(b) != normalize(a):  # else it is an exact duplicate
                            add(kind, length, 1, a, b)
                            made += 1
            for length, count in (("short", per_kind * 2), ("long", per_kind)):
                for _ in range(count):
                    a, b = rng.sample(pools[length], 2)
                    add("unrelated", length, 0, a, b)
            templates = TEMPLATES[lang][0::2] if split == "dev" else TEMPLATES[lang][1::2]
            for kind, one_place in (("template", False), ("template_one_place", True)):
                for _ in range(per_kind * 3):
                    a, b = _template_pair(templates, lang, rng, one_place)
                    add(kind, _length(a), 0, a, b)
            for a, b in PARAPHRASES[lang][0::2] if split == "dev" else PARAPHRASES[lang][1::2]:
                add("paraphrase", _length(a), 0, a, b)
    return pairs


def decide(pairs: list[dict], hasher: MinHasher, threshold: float) -> np.ndarray:
    """Whether `clean` would reject b as a near duplicate of a: both normalised, a indexed alone, b queried."""
    first = hasher.signatures([normalize(p["a"]) for p in pairs])
    second = hasher.signatures([normalize(p["b"]) for p in pairs])
    merged = np.zeros(len(pairs), dtype=bool)
    for i, (a, b) in enumerate(zip(first, second)):
        index = LSHIndex(threshold, hasher.num_perm)
        index.insert(0, a)
        merged[i] = index.query(b) is not None
    return merged


def scores(pairs: list[dict], merged: np.ndarray, beta: float = 1.0) -> dict:
    """precision, recall and F-beta of the merge decisions (one-place template pairs left out)."""
    label = np.array([p["label"] == 1 for p in pairs])
    counted = np.array([p["kind"] != "template_one_place" for p in pairs])
    tp = np.count_nonzero(merged & label & counted)
    fp = np.count_nonzero(merged & ~label & counted)
    fn = np.count_nonzero(~merged & label & counted)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f = (1 + beta ** 2) * precision * recall / (beta ** 2 * precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f": f}


def choose_on_dev(pairs: list[dict]) -> tuple[int, float, float]:
    """(CJK shingle length, CJK threshold, F0.5) that score best on the Chinese dev pairs. Records that are
    not CJK records keep their 5-grams and 0.8: these settings do not touch them."""
    dev = {"zh": [p for p in pairs if p["split"] == "dev" and p["lang"] == "zh"]}
    best = None
    for cjk_n, threshold in itertools.product(CJK_NGRAMS, THRESHOLDS):
        hasher = MinHasher(ngram=NGRAM, cjk_ngram=cjk_n)
        score = float(np.mean([scores(ps, decide(ps, hasher, threshold), beta=0.5)["f"] for ps in dev.values()]))
        if best is None or (round(score, 6), threshold) > (round(best[2], 6), best[1]):
            best = (cjk_n, threshold, score)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write the pairs as JSONL")
    args = ap.parse_args()
    pairs = make_pairs(args.seed)
    for key, n in sorted(Counter((p["split"], p["lang"], p["kind"], p["length"]) for p in pairs).items()):
        print(*key, n)
    if args.out:
        args.out.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")


if __name__ == "__main__":
    main()
