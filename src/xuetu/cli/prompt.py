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


@prompt.command(name="compare")
@click.option("--model", default="smollm2:135m", show_default=True, help="The model every prompt is tried on.")
@click.option("--data", default=None, type=click.Path(),
              help="Questions with reference answers (default: the bundled AI-tutor example).")
@click.option("--prompts", "names", multiple=True, help="Templates to compare, the first is the baseline "
              "(default: vague clear). Space- or comma-separated.")
@click.argument("more", nargs=-1)
@click.option("--var", "pairs", multiple=True, help="A variable for every template: NAME=VALUE.")
@click.option("--metrics", default=None, help="Comma-separated metrics (default: chosen from the data).")
@click.option("--primary", default=None, help="The metric the significance test uses (default rougeL).")
@click.option("--max-tokens", default=192, show_default=True)
@click.option("--limit", default=None, type=int, help="Only the first N examples.")
@click.option("--batch", default=8, show_default=True)
@click.option("--fresh", is_flag=True, help="Ignore cached answers.")
@click.option("--out", default=None, type=click.Path(), help="Report folder.")
@click.option("-q", "--quiet", is_flag=True)
def compare_(model, data, names, more, pairs, metrics, primary, max_tokens, limit, batch, fresh, out, quiet):
    """The vague-against-clear experiment (提示词优化对比实验): prompts side by side, with significance."""
    from xuetu.cli.evaluate import _folder, _split, print_comparison
    from xuetu.evaluate.compare import compare, write_comparison
    from xuetu.evaluate.run import EvalSpec
    from xuetu.examples import example_path

    chosen = [n for raw in (*names, *more) for n in _split(raw) or []] or ["vague", "clear"]
    data = data or str(example_path("ai_tutor") / "qa.jsonl")
    values = parse_vars(pairs)
    rows = [(n, EvalSpec(model=model, data=data, prompt=n, metrics=_split(metrics), max_tokens=max_tokens,
                         limit=limit, batch=batch, fresh=fresh,
                         variables={k: v for k, v in values.items() if k in _template_vars(n)})) for n in chosen]
    result = compare(rows, primary=primary, progress=not quiet, title=f"prompts {' vs '.join(chosen)} on {model}")
    path = write_comparison(result, _folder(out))
    print_comparison(result)
    click.echo(f"report: {path / 'report.md'}\n        {path / 'report.html'}")


def _template_vars(name: str) -> set[str]:
    from xuetu.prompts import get

    return set(get(name).variables)


COMMANDS = [prompt]
