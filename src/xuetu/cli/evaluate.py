"""Evaluation verbs: `xuetu eval`, `xuetu compare`, `xuetu decide`, `xuetu simulate` (scripted users against a
served model)."""

from __future__ import annotations

import json

import click


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def generation_options(f):
    """Options every answering command shares."""
    for opt in reversed([
        click.option("--data", required=True, type=click.Path(), help="Test data: JSONL/JSON/CSV questions with "
                     "reference answers (optional keywords, label); text for perplexity; a CSV for --metrics choice; "
                     "chosen/rejected pairs for preference accuracy (found by itself)."),
        click.option("--metrics", default=None, help="Comma-separated: rougeL,rouge1,rouge2,bleu,token_f1,exact_match,"
                     "keyword_hit,classification,perplexity,choice,judge,preference (default: chosen from the data)."),
        click.option("--max-tokens", default=192, show_default=True, help="Longest answer, in tokens."),
        click.option("--limit", default=None, type=int, help="Only the first N examples."),
        click.option("--batch", default=8, show_default=True, help="Answers generated together (transformers)."),
        click.option("--engine", default="auto", show_default=True, help="auto (transformers), llama.cpp, vllm."),
        click.option("--chinese", type=click.Choice(["char", "jieba"]), default="char", show_default=True,
                     help="Split Chinese into characters or jieba words for ROUGE and F1."),
        click.option("--fresh", is_flag=True, help="Ignore cached answers."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
    ]):
        f = opt(f)
    return f


def _summary(result: dict) -> None:
    from xuetu.evaluate.report import fmt
    from xuetu.evaluate.scoring import LABELS

    for k, v in result["metrics"].items():
        click.echo(f"  {LABELS.get(k, k):<26} {fmt(k, v)}")
    lat = result.get("latency")
    if lat:
        click.echo(f"  {'seconds per answer (p50)':<26} {lat['p50']:.2f}  ({lat.get('concurrency', 1)} in flight)")


@click.command(name="eval")
@click.argument("model")
@generation_options
@click.option("--prompt", "prompt_name", default=None, help="A prompt-library template (see `xuetu prompt list`).")
@click.option("--var", "pairs", multiple=True, help="A template variable NAME=VALUE (repeatable).")
@click.option("--kb", default=None, help="Answer with retrieval from this knowledge base (RAG).")
@click.option("--k", "k", default=3, show_default=True, help="Sources retrieved per question with --kb.")
@click.option("--judge", default=None, help="LLM as judge: a local model, or with --judge-url a served one.")
@click.option("--judge-url", default=None, help="OpenAI-compatible endpoint of the judge.")
@click.option("--judge-key", default="unused", envvar="XUETU_JUDGE_KEY", help="API key of the judge endpoint.")
@click.option("--rubric", default=None, help="What the judge scores by (default: correctness, helpfulness, clarity).")
@click.option("--out", default=None, type=click.Path(), help="Report folder (default: XUETU_HOME/evals/<name>).")
def eval_(model, data, metrics, max_tokens, limit, batch, engine, chinese, fresh, quiet, prompt_name, pairs, kb, k,
          judge, judge_url, judge_key, rubric, out):
    """Evaluate MODEL on test data; write report.md, report.html (with plots) and report.json."""
    from pathlib import Path

    from xuetu.cli.prompt import parse_vars
    from xuetu.evaluate.report import write_eval
    from xuetu.evaluate.run import EvalSpec, evaluate

    spec = EvalSpec(model=model, data=data, metrics=_split(metrics), prompt=prompt_name, variables=parse_vars(pairs),
                    kb=kb, k=k, judge=judge, judge_url=judge_url, judge_key=judge_key, rubric=rubric,
                    max_tokens=max_tokens, limit=limit, batch=batch, engine=engine, chinese=chinese, fresh=fresh)
    result = evaluate(spec, progress=not quiet)
    path = write_eval(result, _folder(out))
    click.echo(f"{result['model']} on {Path(data).name}: {result.get('n', 0)} examples"
               + (" (answers from the cache)" if result.get("cached") else ""))
    _summary(result)
    if result.get("errors"):
        click.secho(f"  {result['errors']} answers failed (see the report)", fg="yellow")
    click.echo(f"report: {path / 'report.md'}\n        {path / 'report.html'}")


@click.command()
@click.argument("script", type=click.Path())
@click.option("--model", required=True, help="Model to talk to, as the server names it.")
@click.option("--url", default="http://127.0.0.1:8000/v1", show_default=True, help="OpenAI-compatible endpoint.")
@click.option("--key", default="unused", envvar="XUETU_API_KEY", help="API key (default $XUETU_API_KEY).")
@click.option("--kb", default=None, help="Answer from this knowledge base (xuetu serve).")
@click.option("--max-tokens", default=256, show_default=True)
@click.option("--report", default=None, type=click.Path(), help="Also write the result as JSON here.")
@click.option("-q", "--quiet", is_flag=True)
def simulate(script, model, url, key, kb, max_tokens, report, quiet):
    """Run scripted conversations (模拟用户测试) and check every reply; exit 1 if any check fails."""
    from xuetu.evaluate import simulate as sim

    result = sim.run(sim.load(script), model, url, key, kb=kb, max_tokens=max_tokens, progress=not quiet)
    click.echo(f"{result.passed}/{result.turns} turns passed ({result.pass_rate:.0%})")
    for f in result.failures:
        click.secho(f"FAIL {f.conversation} · turn {f.turn} · {f.check}: {f.why}", fg="red")
        click.echo(f"     reply: {f.reply[:160]!r}")
    if report:
        from pathlib import Path

        Path(report).write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    if result.failures:
        raise SystemExit(1)


def print_comparison(result: dict) -> None:
    from xuetu.evaluate.compare import COST_HEADER, cost_cell, is_remote, verdict
    from xuetu.evaluate.report import fmt
    from xuetu.evaluate.scoring import LABELS

    metric, labels = result["primary"], result["models"]
    width = max(len(label) for label in labels) + 2
    shown = [metric, *(["pref_accuracy"] if result.get("task") == "preference" and metric != "pref_accuracy" else [])]
    timed = result.get("task") != "preference"
    priced = timed and any(is_remote(result["rows"][k]) for k in labels)
    click.echo(f"{'':<{width}}" + "".join(f"{LABELS.get(m, m) + ' [95% CI]':<30}" for m in shown)
               + (f"{'s/answer':<12}" if timed else "") + (COST_HEADER if priced else ""))
    for label in labels:
        row = result["rows"][label]
        click.echo(f"{label:<{width}}" + "".join(f"{fmt(m, row['metrics'].get(m)):<30}" for m in shown)
                   + (f"{row.get('latency', {}).get('p50', 0):<12.2f}" if timed else "")
                   + (cost_cell(row) if priced else ""))
    for label, p in result["pairs"].items():
        click.echo(f"{label} − {labels[0]}: {p['delta']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}], "
                   f"P(better) {p['p_better']:.2f}, wins/ties/losses {p['wins']}/{p['ties']}/{p['losses']}: "
                   f"{verdict(label, labels[0], p)}")
        if "pairwise" in p:
            j = p["pairwise"]
            click.echo(f"  judge {j['judge']}: {label} wins {j['b']}, {labels[0]} wins {j['a']}, ties {j['tie']} "
                       f"({j['inconsistent']} verdicts flipped with the order)")


@click.command()
@click.option("--models", "names", required=True, help="Comma-separated models or adapters: A,B,...")
@generation_options
@click.option("--prompt", "prompt_name", default=None, help="The same prompt template for every model.")
@click.option("--kb", default=None, help="Answer every model with retrieval from this knowledge base.")
@click.option("--primary", default=None, help="The metric the pairing and 'where B wins' use (default rougeL; pref_margin "
              "on preference pairs).")
@click.option("--judge", default=None, help="Add pairwise LLM-judge verdicts (position-swapped) against the first.")
@click.option("--judge-url", default=None, help="OpenAI-compatible endpoint of the judge.")
@click.option("--judge-key", default="unused", envvar="XUETU_JUDGE_KEY", help="API key of the judge endpoint.")
@click.option("--rubric", default=None, help="What the judge compares by.")
@click.option("--out", default=None, type=click.Path(), help="Report folder.")
def compare(names, data, metrics, max_tokens, limit, batch, engine, chinese, fresh, quiet, prompt_name, kb, primary,
            judge, judge_url, judge_key, rubric, out):
    """Models and adapters side by side on the same data, with per-example differences ("where B wins")."""

    from xuetu.evaluate.compare import compare as run_compare
    from xuetu.evaluate.compare import write_comparison
    from xuetu.evaluate.run import EvalSpec

    rows = [(name, EvalSpec(model=name, data=data, metrics=_split(metrics), prompt=prompt_name, kb=kb,
                            max_tokens=max_tokens, limit=limit, batch=batch, engine=engine, chinese=chinese,
                            fresh=fresh)) for name in _split(names) or []]
    result = run_compare(rows, primary=primary, progress=not quiet,
                         judge={"judge": judge, "judge_url": judge_url, "judge_key": judge_key, "rubric": rubric})
    path = write_comparison(result, _folder(out))
    print_comparison(result)
    click.echo(f"report: {path / 'report.md'}\n        {path / 'report.html'}")


@click.command()
@click.option("--model", default="smollm2:135m", show_default=True, help="The base model.")
@click.option("--data", default=None, type=click.Path(), help="Question/answer pairs (default: the bundled example).")
@click.option("--docs", default=None, type=click.Path(), help="Documents for RAG (default: the bundled example's).")
@click.option("--budget-minutes", default=10.0, show_default=True, help="Time the LoRA may train for.")
@click.option("--metrics", default=None, help="Comma-separated metrics (default: chosen from the data).")
@click.option("--prompt", "prompt_name", default="clear", show_default=True, help="The prompt for rows (a) and (b).")
@click.option("--test-fraction", default=0.25, show_default=True, help="Share of the questions held out.")
@click.option("--seed", default=42, show_default=True)
@click.option("--max-tokens", default=128, show_default=True)
@click.option("--k", "k", default=3, show_default=True, help="Sources retrieved per question.")
@click.option("--batch", default=8, show_default=True)
@click.option("--set", "overrides", multiple=True, help="A training setting key=value (e.g. lora.r=8).")
@click.option("--api", "api", default=None, metavar="MODEL",
              help="A remote model (xuetu create NAME --preset ...): adds rows (e) API model and (f) API model + RAG.")
@click.option("--out", default=None, type=click.Path(), help="Report folder.")
@click.option("-q", "--quiet", is_flag=True)
def decide(model, data, docs, budget_minutes, metrics, prompt_name, test_fraction, seed, max_tokens, k, batch,
           overrides, api, out, quiet):
    """Prompt, RAG, LoRA or LoRA + RAG (or an API model)? Measures each on held-out questions and recommends one."""
    from xuetu.evaluate.decide import HEADERS, decide as run_decide, table_rows
    from xuetu.evaluate.scoring import LABELS
    from xuetu.examples import example_path

    example = example_path("ai_tutor")
    result, path = run_decide(model, data or str(example / "qa.jsonl"), docs or str(example / "docs"),
                              budget_minutes=budget_minutes, metrics=_split(metrics), prompt=prompt_name,
                              test_fraction=test_fraction, seed=seed, max_tokens=max_tokens, k=k, batch=batch,
                              train_overrides=list(overrides), progress=not quiet, folder=_folder(out), api=api)
    headers = [h.format(metric=LABELS.get(result["primary"], result["primary"])) for h in HEADERS]
    rows = table_rows(result)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) + 2 for i in range(len(headers))]
    for r in [headers, *rows]:
        click.echo("".join(f"{str(v):<{w}}" for v, w in zip(r, widths)))
    rec = result["recommendation"]
    click.secho(f"\nRecommendation: {rec['label']}", bold=True)
    for line in rec["why"]:
        click.echo(f"  {line}")
    click.echo(f"report: {path / 'report.md'}\n        {path / 'report.html'}")


def _folder(out):
    from pathlib import Path

    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        return Path(out)
    return None


COMMANDS = [eval_, compare, decide, simulate]
