"""`xuetu guard check`: which safety rules fire on a text, and what the policy does about them."""

from __future__ import annotations

import json
import sys

import click


@click.group()
def guard():
    """Safety guards: content moderation, prompt injection, personal data (中文 and English)."""


@guard.command()
@click.argument("text", required=False)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="Check this file's text.")
@click.option("--channel", type=click.Choice(["user", "document", "output"]), default="user", show_default=True,
              help="Where the text comes from: a user's message, a retrieved document, or a model's answer.")
@click.option("--policy", "policy_path", default=None, type=click.Path(), help="A policy YAML (default policy if none).")
@click.option("--key", default=None, help="Apply this API key's policy overrides.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(text, path, channel, policy_path, key, as_json):
    """Explain which rules fire on TEXT (or --file, or standard input) and why; exit 1 if it would be blocked."""
    from pathlib import Path

    from xuetu.safety import Guard

    if text is None:
        text = Path(path).read_text(encoding="utf-8", errors="replace") if path else sys.stdin.read()
    if not text.strip():
        raise click.UsageError("nothing to check: give TEXT, --file F, or text on standard input")
    verdict = Guard.from_policy(policy_path).check(text, channel, key)
    if as_json:
        click.echo(json.dumps({**verdict.to_dict(), "text": verdict.text}, ensure_ascii=False, indent=2))
    else:
        colour = {"block": "red", "mask": "yellow", "warn": "yellow"}.get(verdict.action)
        click.secho(f"{verdict.action.upper()}" + (f": {', '.join(verdict.categories)}" if verdict.categories
                                                   else ": no rule fired"), fg=colour, bold=True)
        for f in verdict.findings:
            click.echo(f"  {f.category:<26} {verdict.actions.get(f.category, ''):<6} {f.rule}")
            click.echo(f"  {'':<26} {f.why}; matched {f.match!r}")
        if verdict.action in ("block", "mask"):
            click.echo(("would answer: " if verdict.blocked else "passed on as: ") + verdict.text)
    if verdict.blocked:
        raise SystemExit(1)


COMMANDS = [guard]
