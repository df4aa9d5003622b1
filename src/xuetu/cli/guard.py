"""`xuetu guard check`: which safety rules fire on a text, and what the policy does about them;
`xuetu guard add`: teach the scorer a text it got wrong."""

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
    g = Guard.from_policy(policy_path)
    verdict = g.check(text, channel, key)
    rating = g.scorer.score(text, channel) if g.scorer is not None and channel in g.scorer.channels else None
    if as_json:
        extra = {"scorer": {"category": rating[0], "attack_probability": round(rating[1], 4),
                            "threshold": g.scorer.threshold}} if rating else {}
        click.echo(json.dumps({**verdict.to_dict(), **extra, "text": verdict.text}, ensure_ascii=False, indent=2))
    else:
        colour = {"block": "red", "mask": "yellow", "warn": "yellow"}.get(verdict.action)
        click.secho(f"{verdict.action.upper()}" + (f": {', '.join(verdict.categories)}" if verdict.categories
                                                   else ": no rule fired"), fg=colour, bold=True)
        for f in verdict.findings:
            click.echo(f"  {f.category:<26} {verdict.actions.get(f.category, ''):<6} {f.rule}")
            click.echo(f"  {'':<26} {f.why}" + (f"; matched {f.match!r}" if f.match else ""))
        if rating is not None:
            click.echo(f"  scorer: {rating[1]:.2f} likely an attack (most like {rating[0]}; flags at "
                       f"{g.scorer.threshold})")
        if verdict.action in ("block", "mask"):
            click.echo(("would answer: " if verdict.blocked else "passed on as: ") + verdict.text)
    if verdict.blocked:
        raise SystemExit(1)


@guard.command()
@click.argument("text")
@click.option("--label", required=True, help="benign, or the attack category: violence, sexual, hate, self_harm, "
              "illegal, injection, jailbreak, system_prompt_extraction, exfiltration, indirect_injection.")
@click.option("--channel", type=click.Choice(["user", "document"]), default="user", show_default=True)
def add(text, label, channel):
    """Teach the scorer TEXT as LABEL (a missed attack, or a false alarm as benign).

    The example goes to XUETU_HOME/safety/examples/mine.jsonl; the scorer retrains on next use (seconds)."""
    from xuetu.safety import scorer

    if label not in scorer.LABELS:
        raise click.BadParameter(f"must be one of {', '.join(scorer.LABELS)}", param_hint="--label")
    if len("".join(text.split())) < scorer.MIN_CHARS:
        raise click.BadParameter(f"the scorer ignores texts under {scorer.MIN_CHARS} characters; write a rule "
                                 "for those (see docs/safety.md)", param_hint="TEXT")
    folder = scorer.user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mine.jsonl"
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"text": text, "label": label, "channel": channel}, ensure_ascii=False) + "\n")
    m = scorer.model()
    category, p = scorer.Scorer().score(text, channel)
    click.echo(f"added to {path} ({sum(m.info['examples'].values())} examples); the scorer now rates it {p:.2f} "
               f"likely an attack" + (f" (most like {category})" if label != "benign" else ""))


COMMANDS = [guard]
