"""`xuetu prompt list|show|render`: the prompt template library."""

from __future__ import annotations

import json

import click


@click.group()
def prompt():
    """Prompt templates (CO-STAR, chain of thought, few-shot, role, output format; English and 中文)."""


@prompt.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json):
    """List the templates: shipped ones and yours (XUETU_HOME/prompts/*.yaml)."""
    from xuetu.prompts import LIBRARY, templates

    rows = [{"name": t.name, "version": t.version, "language": t.language, "variables": list(t.variables),
             "description": t.description, "source": "shipped" if t.path.parent == LIBRARY else str(t.path)}
            for t in templates().values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    click.echo(f"{'NAME':<22} {'VER':>3}  {'LANG':<4}  DESCRIPTION")
    for r in rows:
        click.echo(f"{r['name']:<22} {r['version']:>3}  {r['language']:<4}  {r['description']}")


@prompt.command()
@click.argument("name")
def show(name):
    """Show a template: its variables (with defaults) and its text."""
    from xuetu.prompts import get

    t = get(name)
    click.echo(f"{t.name} v{t.version} ({t.language}) — {t.description}\n{t.path}\n\nvariables:")
    for key, spec in t.variables.items():
        default = f" (default: {spec['default']})" if spec.get("default") is not None else " (required)"
        click.echo(f"  {key:<12} {spec.get('description', '')}{default}")
    if t.system:
        click.echo(f"\nsystem:\n{t.system}")
    click.echo(f"\nuser:\n{t.user}")


def parse_vars(pairs: tuple[str, ...]) -> dict:
    """NAME=VALUE pairs; a VALUE that is JSON (a list, a number) is read as JSON."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--var takes NAME=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value) if value[:1] in "[{0123456789-" else value
        except json.JSONDecodeError:
            out[key] = value
    return out


@prompt.command()
@click.argument("name")
@click.option("--var", "pairs", multiple=True, help="A variable: NAME=VALUE (repeatable; JSON for lists).")
@click.option("--json", "as_json", is_flag=True, help="Print the chat messages as JSON.")
def render(name, pairs, as_json):
    """Fill in a template's variables and print the prompt."""
    from xuetu.prompts import get

    messages = get(name).render(parse_vars(pairs))
    if as_json:
        click.echo(json.dumps(messages, indent=2, ensure_ascii=False))
        return
    for m in messages:
        click.echo(f"[{m['role']}]\n{m['content']}\n")


COMMANDS = [prompt]
