"""What the embedded 135M model gets right, under each candidate default for `xuetu run` and the server.

Twenty short questions with one checkable answer each (English and Chinese), asked on llama.cpp with:
Ollama's generic defaults (temperature 0.8, repeat penalty 1.1), the model card's sampling (temperature
0.2, top-p 0.9) with and without the repeat penalty, and greedy decoding. Sampled settings are asked
with three seeds. The share of right answers per setting and language is what chose smollm2:135m's
defaults in models/aliases.py.

    .venv/bin/python benchmarks/small_model.py [--seeds 3] [--no-record]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

QUESTIONS = [  # (language, question, any of these in the answer counts as right)
    ("en", "What is the capital of France?", ("Paris",)),
    ("en", "What is the capital of Japan?", ("Tokyo",)),
    ("en", "What is the capital of Italy?", ("Rome",)),
    ("en", "How many days are in a week?", ("7", "seven")),
    ("en", "What is the largest planet in our solar system?", ("Jupiter",)),
    ("en", "What color is the sky on a clear day?", ("blue",)),
    ("en", "Who wrote Romeo and Juliet?", ("Shakespeare",)),
    ("en", "At what temperature in Celsius does water boil at sea level?", ("100",)),
    ("en", "What is 2 plus 3?", ("5", "five")),
    ("en", "What is the chemical symbol for gold?", ("Au",)),
    ("en", "What is the opposite of hot?", ("cold",)),
    ("en", "Which animal is known as the king of the jungle?", ("lion",)),
    ("zh", "中国的首都是哪里？", ("北京", "Beijing")),
    ("zh", "一年有几个月？", ("12", "十二")),
    ("zh", "水的化学式是什么？", ("H2O", "H₂O")),
    ("zh", "太阳从哪个方向升起？", ("东", "east")),
    ("zh", "一加一等于几？", ("2", "二", "两")),
    ("zh", "日本的首都是哪里？", ("东京", "Tokyo")),
    ("zh", "一周有几天？", ("7", "七")),
    ("zh", "法国的首都是哪里？", ("巴黎", "Paris")),
]

SETTINGS = {  # name -> (GenerateOptions overrides, sampled?)
    "Ollama defaults (t 0.8, top-p 0.9, repeat 1.1)": ({"temperature": 0.8, "top_p": 0.9, "repeat_penalty": 1.1}, True),
    "model card (t 0.2, top-p 0.9) + repeat 1.1 (the default)": ({"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.1}, True),
    "model card (t 0.2, top-p 0.9), repeat off": ({"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.0}, True),
    "greedy, repeat 1.1": ({"temperature": 0.0, "repeat_penalty": 1.1}, False),
    "greedy, repeat off": ({"temperature": 0.0, "repeat_penalty": 1.0}, False),
}


def right(answer: str, expected: tuple[str, ...]) -> bool:
    return any(e.lower() in answer.lower() for e in expected)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--no-record", action="store_true", help="Print only; do not update RESULTS.md.")
    args = ap.parse_args()

    import os

    os.environ.setdefault("XUETU_HOME", tempfile.mkdtemp(prefix="xuetu-bench-"))
    from xuetu import engines, models
    from xuetu.engines.base import GenerateOptions

    engine = engines.load(models.resolve("smollm2:135m"), engine="llama.cpp")
    rows, examples = [], {}
    for name, (overrides, sampled) in SETTINGS.items():
        score = {"en": [0, 0], "zh": [0, 0]}
        for seed in range(args.seeds if sampled else 1):
            for lang, q, expected in QUESTIONS:
                opts = GenerateOptions(max_tokens=48, seed=seed, **overrides)
                answer = "".join(c.text for c in engine.generate([{"role": "user", "content": q}], opts)).strip()
                score[lang][0] += right(answer, expected)
                score[lang][1] += 1
                if q == QUESTIONS[0][1] and seed == 0:
                    examples[name] = answer
        rows.append((name, score))
        print(f"{name}: en {score['en'][0]}/{score['en'][1]}, zh {score['zh'][0]}/{score['zh'][1]}", flush=True)

    lines = ["| setting | English right | Chinese right |", "|---|---:|---:|"]
    for name, s in rows:
        lines.append(f"| {name} | {s['en'][0] / s['en'][1]:.0%} ({s['en'][0]}/{s['en'][1]}) | "
                     f"{s['zh'][0] / s['zh'][1]:.0%} ({s['zh'][0]}/{s['zh'][1]}) |")
    lines += ["", f"- {len(QUESTIONS)} one-answer questions, up to 48 tokens, llama.cpp (Q4_1); sampled settings "
                  f"over {args.seeds} seeds", "", "'What is the capital of France?', first seed:", ""]
    lines += [f"- {name}: {examples[name]!r}" for name in SETTINGS]
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        from _record import record

        record("small_model", "The embedded 135M model's answers under candidate defaults (`benchmarks/small_model.py`)",
               body)


if __name__ == "__main__":
    main()
