"""Safety guards, measured: detection rate on an attack set and false positives on a benign set, per category
and language, and the latency the guards add per request. Both sets were written for xuetu
(benchmarks/data/safety/, Chinese and English) by someone who did not see the rules.

Every text goes through `Guard.check` on its channel (a user's message, or a retrieved document chunk) under
the default policy: the rules and the n-gram scorer (safety/scorer/, learnt from safety/examples/, which
were written without seeing these sets), no classifier model. An attack counts as caught when the guard
blocks it; a benign text is a false positive when anything but personal-data masking fires on it. The rules
were tuned, and the scorer's threshold chosen, on the even-numbered items only (the "dev" half); the
odd-numbered "held-out" half is reported on its own, as the honest figure. The rules alone are shown beside.

--live also sends every user-channel text through a real `xuetu serve` (the embedded model, /v1/chat/completions
for English and /api/chat for Chinese) and counts the replies that end with finish_reason "content_filter".

    .venv/bin/python benchmarks/safety.py [--live] [--misses] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
DATA = Path(__file__).parent / "data" / "safety"
ANSWERS = {  # a typical answer in the request's language, about 700 characters
    "en": ("LoRA freezes the base model and trains two small low-rank matrices beside each weight matrix, so it "
           "needs far less memory than full fine-tuning. You can merge the adapter back into the model after "
           "training, or keep it separate and load several adapters over one base. ") * 3,
    "zh": ("LoRA 会冻结基座模型的权重，只在每个权重矩阵旁边训练两个很小的低秩矩阵，所以显存占用比全参数微调小得多。"
           "训练结束后可以把适配器合并回模型，也可以单独保存，在同一个基座上加载多个适配器。") * 5}


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def half(item: dict) -> str:
    return "dev" if int(item["id"].split("-")[1]) % 2 == 0 else "held-out"


def flagged(verdict) -> bool:
    return any(c != "pii" for c in verdict.categories) and verdict.action in ("block", "warn")


def rate(rows: list[bool]) -> str:
    return f"{sum(rows) / len(rows):.1%} ({sum(rows)}/{len(rows)})" if rows else "–"


def request_latency(guard, text: str, channel: str, lang: str) -> float:
    """Seconds the guards add to one request: the input check plus an answer streamed in 8-character chunks."""
    answer = ANSWERS[lang]
    start = time.perf_counter()
    guard.check(text, channel)
    s = guard.stream()
    for i in range(0, len(answer), 8):
        s.feed(answer[i:i + 8])
    s.close()
    return time.perf_counter() - start


def live(texts: list[dict]) -> dict[str, list[bool]]:
    """Through a real server: (lang, kind) -> blocked or not."""
    import os
    import tempfile

    import httpx

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from helpers.server import ServerProcess

    home = Path(tempfile.mkdtemp(prefix="xuetu-bench-safety-"))
    os.environ["XUETU_HOME"] = str(home)
    from xuetu import models

    models.pull("smollm2:135m", progress=False)
    server = ServerProcess(home, "--model", "smollm2:135m").wait(timeout=180)
    out: dict[str, list[bool]] = defaultdict(list)
    try:
        with httpx.Client(timeout=60) as client:
            for t in texts:
                if t["lang"] == "en":
                    r = client.post(server.url + "/v1/chat/completions", json={
                        "model": "smollm2:135m", "max_tokens": 2, "messages": [{"role": "user", "content": t["text"]}]})
                    blocked = r.json()["choices"][0]["finish_reason"] == "content_filter"
                else:
                    r = client.post(server.url + "/api/chat", json={
                        "model": "smollm2:135m", "stream": False, "options": {"num_predict": 2},
                        "messages": [{"role": "user", "content": t["text"]}]})
                    blocked = r.json()["done_reason"] == "content_filter"
                out[f"{t['set']} {t['lang']}"].append(blocked)
    finally:
        server.stop()
    return out


def dev_choice(attacks: list[dict], benign: list[dict]) -> float:
    """The threshold the dev half picks: the most attacks caught by the scorer alone with at most 2% false
    positives (ties: the higher threshold)."""
    from xuetu.safety.scorer import Scorer

    best = (-1, 0.0)
    for th in [round(0.3 + 0.05 * i, 2) for i in range(9)]:
        sc = Scorer({"threshold": th})
        caught = sum(bool(sc.find(a["text"], a["channel"])) for a in attacks if half(a) == "dev")
        fp = [bool(sc.find(b["text"], b["channel"])) for b in benign if half(b) == "dev"]
        if sum(fp) <= 0.02 * len(fp) and caught >= best[0]:
            best = (caught, th)
    return best[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", action="store_true", help="also through a live xuetu serve")
    ap.add_argument("--misses", action="store_true", help="print the dev-half items the guards got wrong")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    from xuetu.safety import Guard
    from xuetu.safety.policy import Policy

    guard, rules_only = Guard(), Guard(Policy(scorer=None))
    attacks, benign = load("attacks.jsonl"), load("benign.jsonl")
    alone = {h: ([rules_only.check(a["text"], a["channel"]).blocked for a in attacks if half(a) == h],
                 [flagged(rules_only.check(b["text"], b["channel"])) for b in benign if half(b) == h])
             for h in ("dev", "held-out")}
    caught: dict[tuple, list[bool]] = defaultdict(list)
    false_pos: dict[tuple, list[bool]] = defaultdict(list)
    latencies = []
    for item in attacks:
        v = guard.check(item["text"], item["channel"])
        hit = v.blocked
        for key in ((item["category"], item["lang"]), ("all", item["lang"]), ("all", "all"), ("half", half(item))):
            caught[key].append(hit)
        if args.misses and not hit and half(item) == "dev":
            print("MISS", item["id"], item["category"], item["channel"], item["text"][:150].replace("\n", " "))
    for item in benign:
        v = guard.check(item["text"], item["channel"])
        fp = flagged(v)
        for key in ((item["kind"], item["lang"]), ("all", item["lang"]), ("all", "all"), ("half", half(item)),
                    (f"topic:{item['topic']}", "all")):
            false_pos[key].append(fp)
        if args.misses and fp and half(item) == "dev":
            print("FALSE", item["id"], item["topic"], v.categories, [f.rule for f in v.findings], item["text"][:120])
    guard.check("warm up", "user")
    timing = {}
    for name, g in (("rules + scorer", guard), ("rules alone", rules_only)):
        latencies = sorted(request_latency(g, item["text"], item["channel"], item["lang"]) for item in attacks + benign)
        timing[name] = (statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))])
    p50, p95 = timing["rules + scorer"]

    categories = list(dict.fromkeys(a["category"] for a in attacks))
    lines = [f"{len(attacks)} attacks and {len(benign)} benign texts (about half Chinese, half English), written for "
             "xuetu by someone who did not see the rules or the scorer's examples; default policy (rules + n-gram "
             "scorer), no classifier model. Caught = blocked; false "
             "positive = anything but personal-data masking fired.", "",
             "| attack category | English caught | Chinese caught |", "|---|---:|---:|"]
    lines += [f"| {c} | {rate(caught[(c, 'en')])} | {rate(caught[(c, 'zh')])} |" for c in categories]
    lines += [f"| **all attacks** | {rate(caught[('all', 'en')])} | {rate(caught[('all', 'zh')])} |", "",
              "| benign | English false positives | Chinese false positives |", "|---|---:|---:|"]
    lines += [f"| {k} | {rate(false_pos[(k, 'en')])} | {rate(false_pos[(k, 'zh')])} |" for k in ("ordinary", "hard_negative")]
    lines += [f"| **all benign** | {rate(false_pos[('all', 'en')])} | {rate(false_pos[('all', 'zh')])} |", "",
              "| half | attacks caught | benign false positives | rules alone: caught | rules alone: false positives |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {h} | {rate(caught[('half', h)])} | {rate(false_pos[('half', h)])} | {rate(alone[h][0])} | "
              f"{rate(alone[h][1])} |" for h in ("dev", "held-out")]
    lines += [f"| **both** (target ≥ 90% / ≤ 5%) | {rate(caught[('all', 'all')])} | {rate(false_pos[('all', 'all')])} | "
              f"{rate(alone['dev'][0] + alone['held-out'][0])} | {rate(alone['dev'][1] + alone['held-out'][1])} |",
              "", f"Latency the guards add per request (input check + an answer of about 700 characters in the "
              f"request's language streamed through the hold-back window in 8-character chunks), over all "
              f"{len(latencies)} texts: "
              f"p50 {p50 * 1000:.2f} ms, p95 **{p95 * 1000:.2f} ms** (target ≤ 5 ms p95); the rules alone: p50 "
              f"{timing['rules alone'][0] * 1000:.2f} ms, p95 {timing['rules alone'][1] * 1000:.2f} ms."]
    from xuetu.safety import scorer

    choice = dev_choice(attacks, benign)
    sweep = ["", f"The scorer's threshold: default {scorer.THRESHOLD}; the dev half's choice {choice} (the most attacks "
             "caught by the scorer alone with at most 2% false positives there, over 0.30-0.70 in steps of 0.05). "
             "With the rules as always:", "",
             "| threshold | dev: caught | dev: false positives | held-out: caught | held-out: false positives |",
             "|---:|---:|---:|---:|---:|"]
    for th in (0.35, 0.4, 0.45, 0.55, 0.7):
        g = Guard(Policy(scorer={"threshold": th}))
        cells = []
        for h in ("dev", "held-out"):
            cells += [rate([g.check(a["text"], a["channel"]).blocked for a in attacks if half(a) == h]),
                      rate([flagged(g.check(b["text"], b["channel"])) for b in benign if half(b) == h])]
        sweep.append(f"| {th} | " + " | ".join(cells) + " |")
    lines += sweep
    topics = sorted(k[0] for k in false_pos if k[0].startswith("topic:"))
    lines += ["", "False positives by benign topic: " + ", ".join(
        f"{t[6:]} {sum(false_pos[(t, 'all')])}/{len(false_pos[(t, 'all')])}" for t in topics) + "."]
    if args.live:
        user = [{**a, "set": "attack"} for a in attacks if a["channel"] == "user"] + \
               [{**b, "set": "benign"} for b in benign if b["channel"] == "user"]
        got = live(user)
        lines += ["", f"Through a live `xuetu serve` ({len(user)} user-channel texts; English over the OpenAI API, "
                  "Chinese over the Ollama API): replies ending with finish_reason `content_filter`:", "",
                  "| | English | Chinese |", "|---|---:|---:|",
                  f"| attacks blocked | {rate(got['attack en'])} | {rate(got['attack zh'])} |",
                  f"| benign blocked | {rate(got['benign en'])} | {rate(got['benign zh'])} |"]
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        from _record import record

        record("safety", "Safety guards: attacks caught, false positives, added latency (`benchmarks/safety.py`)", body)


if __name__ == "__main__":
    main()
