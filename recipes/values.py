"""The values recipe (灌输价值观): teach a model to refuse harmful requests politely and still help with the rest.

The seeds' fourth step of a model's upbringing: a raw model answers anything ("a doctor must not insult a
patient" is a value it has to be taught). This recipe builds preference pairs from the safety guard's own
example sets (src/xuetu/safety/examples: hand-written harmful and benign requests in English and Chinese),
trains DPO on them, and measures what changed:

1. pairs: for each harmful request, a polite refusal in the request's language is chosen over the model's own
   answer; for each benign request, the model's own answer is chosen over a refusal (so it does not learn to
   refuse everything);
2. train: `xuetu finetune --method dpo` with recipes/values-dpo.yaml;
3. check: on held-out requests, how often base and tuned model refuse harmful and benign ones, printed and
   drawn to values.png.

    .venv/bin/python recipes/values.py --model smollm2:135m --out polite          # ~15 min on 2 CPU cores
    .venv/bin/python recipes/values.py --per-kind 3 --benign 12 --set max_steps=4  # a quick look
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from xuetu.safety import guard as guard_module

HARMFUL = ("illegal", "violence", "sexual", "hate", "self_harm")
REFUSAL = {
    "en": "I'm sorry, but I can't help with that. If there's something else you need, I'm glad to help.",
    "zh": "抱歉，这个我不能帮忙。如果你有其他需要，我很乐意帮助你。",
}
SELF_HARM = {
    "en": "I'm really sorry you're feeling this way, but I can't help with that. Please talk to someone you trust "
          "or call a local crisis line; you don't have to face this alone.",
    "zh": "听到你这么难受，我很难过，但这个我不能帮忙。请和你信任的人聊聊，或拨打当地的心理援助热线，你并不孤单。",
}


def examples(name: str) -> list[dict]:
    path = Path(guard_module.__file__).parent / "examples" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def choose_requests(per_kind: int, benign: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Harmful user requests, per_kind of each category and language; benign user requests."""
    rng = random.Random(seed)
    attacks = [e for e in examples("attacks") if e["channel"] == "user" and e["label"] in HARMFUL]
    chosen = []
    for label in HARMFUL:
        for lang in ("en", "zh"):
            group = [e for e in attacks if e["label"] == label and e["lang"] == lang]
            chosen += rng.sample(group, min(per_kind, len(group)))
    rng.shuffle(chosen)  # every category and language on both sides of the held-out cut
    calm = [e for e in examples("benign") if e["channel"] == "user"]
    return chosen, rng.sample(calm, min(benign, len(calm)))


def refusal_for(e: dict) -> str:
    return (SELF_HARM if e["label"] == "self_harm" else REFUSAL)[e.get("lang", "en")]


def build_pairs(harmful: list[dict], benign: list[dict], answer) -> list[dict]:
    """Harmful: refusal over the model's answer. Benign: the model's answer over a refusal."""
    rows = [{"prompt": e["text"], "chosen": refusal_for(e), "rejected": answer(e["text"]), "kind": e["label"]}
            for e in harmful]
    rows += [{"prompt": e["text"], "chosen": answer(e["text"]), "rejected": REFUSAL[e.get("lang", "en")],
              "kind": "benign"} for e in benign]
    return [r for r in rows if r["chosen"].strip() and r["rejected"].strip() and r["chosen"] != r["rejected"]]


def answerer(model: str, max_tokens: int):
    """The model's own greedy answer to a request."""
    from xuetu import engines, models
    from xuetu.engines.base import GenerateOptions

    engine = engines.load(models.resolve(model, pull_missing=True))

    def answer(text: str) -> str:
        opts = GenerateOptions(temperature=0, max_tokens=max_tokens, seed=0)
        return "".join(c.text for c in engine.generate([{"role": "user", "content": text}], opts)).strip()
    return answer


def refusal_rates(model: str, harmful: list[dict], benign: list[dict], max_tokens: int) -> dict:
    from xuetu.train.rewards import parse

    refuses = parse(["refusal"])
    answer = answerer(model, max_tokens)
    rate = lambda items: sum(refuses.score(e["text"], answer(e["text"]), {})[0] for e in items) / max(1, len(items))  # noqa: E731
    return {"harmful refused": rate(harmful), "benign refused": rate(benign)}


def plot(base: dict, tuned: dict, names: tuple[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    keys = list(base)
    x = range(len(keys))
    ax.bar([i - 0.2 for i in x], [base[k] for k in keys], width=0.4, label=names[0], color="#999999")
    ax.bar([i + 0.2 for i in x], [tuned[k] for k in keys], width=0.4, label=names[1], color="#4C72B0")
    ax.set_xticks(list(x), keys)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of held-out requests")
    ax.set_title("refusals before and after the values DPO")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    from xuetu.train import args as targs
    from xuetu.train.finetune import finetune

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2:135m")
    ap.add_argument("--out", default="polite")
    ap.add_argument("--per-kind", type=int, default=6, help="harmful requests per category and language")
    ap.add_argument("--benign", type=int, default=40, help="benign requests")
    ap.add_argument("--heldout", type=float, default=0.25, help="share of the requests kept back to measure")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--workdir", default="values-run")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="a fine-tune setting, key=value")
    ns = ap.parse_args(argv)
    work = Path(ns.workdir)
    work.mkdir(parents=True, exist_ok=True)
    harmful, benign = choose_requests(ns.per_kind, ns.benign, seed=0)
    cut_h, cut_b = int(len(harmful) * (1 - ns.heldout)), int(len(benign) * (1 - ns.heldout))
    print(f"building pairs from {len(harmful)} harmful and {len(benign)} benign requests")
    pairs = build_pairs(harmful[:cut_h], benign[:cut_b], answerer(ns.model, ns.max_tokens))
    data = work / "values-pairs.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pairs), encoding="utf-8")
    recipe = Path(__file__).with_name("values-dpo.yaml")
    args = targs.load(targs.TrainArgs, recipe, [f"model={ns.model}", f"data={data}", f"out={ns.out}", *ns.overrides])
    result = finetune(args)
    held_h, held_b = harmful[cut_h:], benign[cut_b:]
    base = refusal_rates(ns.model, held_h, held_b, ns.max_tokens)
    tuned = refusal_rates(result.model, held_h, held_b, ns.max_tokens)
    for k in base:
        print(f"{k:>16}: {ns.model} {base[k]:.2f} -> {result.model} {tuned[k]:.2f}")
    plot(base, tuned, (ns.model, result.model), work / "values.png")
    (work / "values.json").write_text(json.dumps({"base": base, "tuned": tuned, "model": result.model}, indent=2))
    print(f"pairs: {data}\nrun: {result.run}\nplot: {work / 'values.png'}")


if __name__ == "__main__":
    main()
