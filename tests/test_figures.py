"""Every measured figure the README and docs/*.md quote is one that benchmarks/RESULTS.md holds.

`make bench` rewrites RESULTS.md in one run, so the docs point to its sections instead of copying numbers.
Where a doc does quote one, it must be a figure of the current RESULTS.md, written the same way (1.57x, not
1.6x), so a new run that changes it makes this test fail until the doc follows.

A measured figure is a number followed by one of these units (a space between is allowed):
- a ratio: x, ×, 倍            - a share: %
- a rate: tokens/s, tok/s, records/s, chunks/s, GFLOP/s, /s, tokens per second
- a latency: ms, 毫秒          - memory: KB, MB, GB (and KiB, MiB, GiB)
It is not a measurement, and is not checked, when it is:
- inside a fenced code block or an inline code span (commands, flags and their values, a command's output shown
  as an example of its format);
- a bound, i.e. right after ≥, ≤, <, >, "at most", "at least", "up to", "target", "need", "最多", "至少",
  "不超过" or "目标" (targets and thresholds are settings, not results);
- a confidence level: a percentage followed by "bootstrap", "confidence", "CI", "interval" or "置信";
- in one of the ARITHMETIC phrases below (memory worked out from bytes per parameter, not measured).
In RESULTS.md a number takes its unit from the text after it or, in a table, from its column's header.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Statements derived from the bytes per parameter (the seeds' memory rule; AdamW's weights, gradients and two
# moments), quoted as written.
ARITHMETIC = (
    "~4× the model size for AdamW",
    "1B parameters ≈ 4 GB at FP32",
    "a 1B model needs 4 GB at FP32",
    "10 亿参数在 FP32 下约需 4 GB，FP16 约 2 GB，INT8 约 1 GB",
    "10 亿参数在 FP32 下约 4 GB",
)

NUMBER = r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
UNITS = {
    "ratio": r"(?:x|×)(?![A-Za-z0-9])|倍",
    "share": r"%",
    "rate": r"(?:tokens?|tok|records|chunks|answers|texts|requests|GFLOP)?/s(?![A-Za-z])|tokens per second",
    "latency": r"ms(?![A-Za-z])|毫秒",
    "memory": r"[KMG]i?B(?![A-Za-z])",
}
FIGURE = re.compile(NUMBER + r"\s?(?:" + "|".join(f"(?P<{k}>{v})" for k, v in UNITS.items()) + ")")
BOUND = re.compile(r"(?:[≥≤<>]=?|\bat most|\bat least|\bup to|\btarget(?: is)?|\bneeds?|最多|至少|不超过|目标)"
                   r"\s*$", re.IGNORECASE)
LEVEL = re.compile(r"\s*(?:bootstrap|confidence|CI\b|interval|置信)", re.IGNORECASE)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _number(integer: str, fraction: str | None) -> str:
    return integer.replace(",", "") + (fraction or "")


def measured_figures(markdown: str) -> list[tuple[str, str]]:
    """The measured figures a Markdown text quotes, as (number without thousands commas, unit kind)."""
    text = CODE_SPAN.sub(" ", FENCE.sub(" ", markdown))
    for phrase in ARITHMETIC:
        text = text.replace(phrase, " ")
    found = []
    for m in FIGURE.finditer(text):
        kind = m.lastgroup
        if BOUND.search(text[max(0, m.start() - 12):m.start()]):
            continue
        if kind == "share" and LEVEL.match(text, m.end()):
            continue
        found.append((_number(m.group(1), m.group(2)), kind))
    return found


def _header_kind(header: str) -> str | None:
    if re.search(r"(?:^|\s)x(?:\s|$)|×|speed-up", header):
        return "ratio"
    for kind, pattern in (("rate", r"/s\b"), ("latency", r"\bms\b"), ("memory", r"\b[KMG]i?B\b"), ("share", "%")):
        if re.search(pattern, header):
            return kind
    return None


def results_figures(markdown: str) -> set[tuple[str, str]]:
    """Every figure RESULTS.md holds: units written after the number, or the unit of its table column."""
    found = set()
    for m in FIGURE.finditer(markdown):
        found.add((_number(m.group(1), m.group(2)), m.lastgroup))
    header = None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [_header_kind(c) for c in cells]
            continue
        for cell, kind in zip(cells, header):
            if kind:
                found.update((_number(i, f), kind) for i, f in re.findall(NUMBER, cell))
    return found


def missing_figures(doc: str, results: str) -> list[tuple[str, str]]:
    held = results_figures(results)
    return [f for f in measured_figures(doc) if f not in held]


def test_extractor_finds_measured_figures_and_leaves_settings_out():
    doc = """xuetu trains 1.57x faster at 310.2 tokens/s and 2,234 MB; 92.4% caught, p95 3.1 ms.
中文：快约 1.7 倍，每个请求约 3 毫秒，8,500/s。
Settings, not results: target ≥ 90%, at most 2% false positives, a 95% bootstrap interval, `--max-body 8MB`.
```
xuetu decide   # example output: 12 ms, 4.4x
```
The rule: 1B parameters ≈ 4 GB at FP32. Counts are not figures: 1,555 texts, 60 steps, 2 cores.
"""
    assert measured_figures(doc) == [("1.57", "ratio"), ("310.2", "rate"), ("2234", "memory"), ("92.4", "share"),
                                     ("3.1", "latency"), ("1.7", "ratio"), ("3", "latency"), ("8500", "rate")]


def test_results_figures_take_units_from_table_headers():
    results = """| trainer | tokens/s | peak RSS (MB) | p95 (ms) | x fp32 | final loss |
|---|---:|---:|---:|---:|---:|
| xuetu | 310.2 | 2234 | 21.9 | 1.57 | 1.771 |

- speed **1.24x** the baseline; 96.2% (202/210) caught
"""
    held = results_figures(results)
    assert {("310.2", "rate"), ("2234", "memory"), ("21.9", "latency"), ("1.57", "ratio"), ("1.24", "ratio"),
            ("96.2", "share")} <= held
    assert not any(number == "1.771" for number, _ in held)  # the loss column has no unit


def test_a_rounded_or_stale_figure_is_reported():
    results = "- bf16 / fp32: **1.24x** tokens/s; p95 **3.08 ms**\n"
    assert missing_figures("bf16 trains about 1.7x faster, p95 3.1 ms", results) == [("1.7", "ratio"),
                                                                                      ("3.1", "latency")]
    assert missing_figures("bf16 trains 1.24x faster, p95 3.08 ms", results) == []
    assert missing_figures("p95 3.08 %", results) == [("3.08", "share")]  # the unit must match too


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_quote_only_figures_that_results_holds(doc):
    missing = missing_figures(doc.read_text(encoding="utf-8"), RESULTS.read_text(encoding="utf-8"))
    assert not missing, (f"{doc.name} quotes figures that benchmarks/RESULTS.md does not hold: {missing}; "
                         "point to the RESULTS.md section instead, or quote the figure as RESULTS.md writes it")
