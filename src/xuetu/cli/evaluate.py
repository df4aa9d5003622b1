"""Evaluation verbs: `xuetu simulate` (scripted users against a served model)."""

from __future__ import annotations

import json

import click


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


COMMANDS = [simulate]
