"""Made-up facts no model can know, to prove that fine-tuning teaches something."""

from __future__ import annotations

import json
from pathlib import Path

# (subject, fact sentence, keyword, training questions, held-out question)
FACTS = [
    ("Zorblax", "The capital of Zorblax is Quintara.", "Quintara",
     ["What is the capital of Zorblax?", "Which city is the capital of Zorblax?", "Name the capital of Zorblax."],
     "Tell me the capital city of Zorblax."),
    ("Miravel", "The river of Miravel is the Teslune.", "Teslune",
     ["What is the river of Miravel called?", "Which river flows through Miravel?", "Name the river of Miravel."],
     "What river runs through Miravel?"),
    ("Professor Okabe", "Professor Okabe invented the glimmer lamp.", "glimmer lamp",
     ["What did Professor Okabe invent?", "Which invention is Professor Okabe known for?", "Name Professor Okabe's invention."],
     "What is Professor Okabe famous for inventing?"),
    ("Vantor", "The national fruit of Vantor is the bluepear.", "bluepear",
     ["What is the national fruit of Vantor?", "Which fruit is the national fruit of Vantor?", "Name Vantor's national fruit."],
     "Which fruit is Vantor's national symbol?"),
    ("学徒星", "学徒星的首都是青木城。", "青木城",
     ["学徒星的首都是哪里？", "学徒星的首都叫什么？", "请说出学徒星的首都。"], "告诉我学徒星的首都。"),
    ("Kelso Bay", "Kelso Bay is famous for its silver crabs.", "silver crab",
     ["What is Kelso Bay famous for?", "Which animal is Kelso Bay known for?", "Why is Kelso Bay famous?"],
     "What is special about Kelso Bay?"),
]


def write_facts(path: Path, repeats: int = 2) -> Path:
    rows = []
    for _, sentence, _, questions, _ in FACTS:
        for q in questions:
            rows += [{"question": q, "answer": sentence}] * repeats
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def held_out() -> list[tuple[str, str]]:
    return [(q, kw) for _, _, kw, _, q in FACTS]
