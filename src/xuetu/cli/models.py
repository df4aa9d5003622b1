"""Model store verbs: pull, list, show, rm, cp, create."""

from __future__ import annotations

import datetime as dt
import json

import click

from xuetu import engines, models
from xuetu.cli.chat import quant_option
from xuetu.models import store
from xuetu.models.facts import describe, human_bytes, human_count


@click.command()
@click.argument("name")
@click.option("--hub", type=click.Choice(["huggingface", "modelscope"]), default=None,
              help="Hub to download from (default: XUETU_HUB, else huggingface).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def pull(name, hub, quiet):
    """Pull a model: an alias (qwen2.5:0.5b), a hub repo id (Qwen/Qwen2.5-0.5B-Instruct),
    a local folder or .gguf file. smollm2:135m is embedded and needs no network."""
    ref = models.pull(name, progress=not quiet, hub=hub)
    click.echo(f"pulled {ref.name}")


def _ago(iso: str | None) -> str:
    if not iso:
        return ""
    seconds = (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(iso)).total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json):
    """List the models in the store."""
    rows, broken = [], []
    for ref in store.list_models():
        problems = ref.problems()
        if problems:
            broken.append((ref.name, problems[0]))
            continue
        size = sum(m["size"] for m in ref.manifest.get("files", {}).values())
        formats = ", ".join(sorted(ref.manifest.get("formats", {})))
        if (remote := ref.remote) is not None:
            formats = f"remote: {remote.label}"
        rows.append({"name": ref.name, "kind": ref.kind, "size": size, "formats": formats,
                     "base": ref.base, "created_at": ref.manifest.get("created_at"), "remote": ref.remote is not None})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(f"{'NAME':<32} {'KIND':<10} {'SIZE':>10}  {'FORMATS':<20} MODIFIED")
        for r in rows:
            fmt = r["formats"] + (f" (on {r['base']})" if r["base"] else "")
            size = "-" if r["remote"] else human_bytes(r["size"])
            click.echo(f"{r['name']:<32} {r['kind']:<10} {size:>10}  {fmt:<20} {_ago(r['created_at'])}")
    for name, why in broken:
        click.secho(f"warning: {name} is damaged ({why}); remove it with `xuetu rm {name}` and pull again",
                    fg="yellow", err=True)


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--verify", is_flag=True, help="Also check every file's sha256 checksum.")
@quant_option
def show(name, as_json, verify, quant):
    """Show a model: architecture, parameters, context, template, files and memory needs.

    With --quant it also loads the model at that precision and reports the weights' measured size."""
    ref = models.resolve(name)
    if ref.remote is not None:
        return _show_remote(ref, as_json)
    facts = describe(ref)
    problems = ref.problems(deep=verify)
    measured = None
    if quant is not None:  # only now: loading takes seconds, and show without --quant reads files alone
        engine = engines.load(ref, engine="transformers", quant=quant)
        measured = (quant.upper(), engine.info()["weights_bytes"])
        engine.close()
    if as_json:
        data = {**facts.__dict__, "memory": dict(facts.memory()), "problems": problems}
        if measured:
            data["measured"] = {"quant": quant, "weights_bytes": measured[1]}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    src = facts.source
    source = " ".join(str(x) for x in (src.get("type"), src.get("id"), src.get("version") or src.get("revision", "")[:12]) if x)
    rows = [("architecture", facts.architecture), ("parameters", human_count(facts.parameters)),
            ("context length", facts.context_length), ("chat template", "yes" if facts.chat_template else "no"),
            ("quantization", facts.quantization), ("kind", facts.kind), ("base", facts.base), ("source", source)]
    click.echo("  Model")
    for key, value in rows:
        if value is not None:
            click.echo(f"    {key:<16}{value}")
    if mem := facts.memory():
        click.echo("\n  Memory for the weights (parameters x bytes per weight; KV cache and activations extra)")
        for label, size in mem:
            click.echo(f"    {label:<16}{human_bytes(size)}")
    if measured:
        click.echo(f"    {measured[0] + ' loaded':<16}{human_bytes(measured[1])} measured "
                   "(parameters and buffers in memory, scales included)")
    if facts.params:
        click.echo("\n  Parameters")
        for key, value in facts.params.items():
            click.echo(f"    {key:<16}{value}")
    click.echo(f"\n  Files ({human_bytes(facts.disk_bytes)} on disk)")
    for rel, size in facts.files:
        click.echo(f"    {rel:<40}{human_bytes(size):>10}")
    if problems:
        click.secho("\n  Problems", fg="red")
        for p in problems:
            click.secho(f"    {p}", fg="red")
        raise SystemExit(1)
    if verify:
        click.echo("\n  All checksums verified.")


def _show_remote(ref, as_json: bool) -> None:
    import os

    r = ref.remote
    key = "none needed" if not r.key_env else f"{r.key_env} ({'set' if os.environ.get(r.key_env) else 'NOT SET'})"
    rows = [("runs at", f"{r.label}, {r.url}"), ("api model", r.model), ("kind", ref.kind), ("key", key),
            ("price", r.price_text()), ("context length", r.context_length)]
    if as_json:
        data = {"name": ref.name, "kind": ref.kind, "remote": {**ref.manifest["remote"], "label": r.label},
                "params": ref.params, "system": ref.system}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo("  Remote model (no weights here: every request goes to the provider)")
    for k, v in rows:
        if v is not None:
            click.echo(f"    {k:<16}{v}")
    if ref.params:
        click.echo("\n  Parameters")
        for k, v in ref.params.items():
            click.echo(f"    {k:<16}{v}")


@click.command()
@click.argument("names", nargs=-1, required=True)
def rm(names):
    """Remove models from the store."""
    for name in names:
        click.echo(f"deleted {store.remove(name)}")


@click.command()
@click.argument("source")
@click.argument("destination")
def cp(source, destination):
    """Copy a model to a new name (files are hard-linked, so it costs no space)."""
    ref = store.copy(models.resolve(source).name, destination)
    click.echo(f"copied {source} to {ref.name}")


def _remote_options(f):
    from xuetu.models.remote import PRESETS

    options = [
        click.option("--api", "api_url", default=None, metavar="URL",
                     help="A remote model: the OpenAI-compatible API's base URL (e.g. https://api.deepseek.com/v1)."),
        click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
                     help="A remote model at a known provider: its URL and key variable filled in."),
        click.option("--api-model", default=None, help="The provider's name for the model (deepseek-chat, qwen-plus)."),
        click.option("--key-env", default=None, metavar="VAR",
                     help="The environment variable holding the API key (read at use time, never stored)."),
        click.option("--price-in", type=float, default=None, help="Price per million prompt tokens, for cost columns."),
        click.option("--price-out", type=float, default=None, help="Price per million answer tokens."),
        click.option("--currency", default=None, help="Currency of the prices (default USD; e.g. CNY)."),
        click.option("--context", "context_length", type=int, default=None, help="The model's context, in tokens."),
        click.option("--timeout", type=float, default=None,
                     help="Seconds to wait for the provider's first byte and between chunks (default 120)."),
        click.option("--embedding", is_flag=True, help="It is an embedding model (for knowledge bases' --embedder)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _create_remote(name, api_url, preset, api_model, key_env, embedding, **spec):
    import os

    from xuetu.models.remote import create_remote

    ref = create_remote(name, kind="embedding" if embedding else "chat", preset=preset, url=api_url,
                        api_model=api_model, key_env=key_env, **spec)
    remote = ref.remote
    click.echo(f"created {ref.name}: {remote.model} at {remote.label} ({remote.url})")
    if remote.key_env:
        state = "set" if os.environ.get(remote.key_env) else "not set yet"
        click.echo(f"the key is read from {remote.key_env} each time it is used ({state}); it is never stored")


@click.command()
@click.argument("name")
@click.option("--from", "path", default=None, type=click.Path(), help="HF folder, PEFT adapter folder or .gguf file.")
@click.option("-f", "--file", "modelfile", default=None, type=click.Path(),
              help="An Ollama Modelfile (FROM, ADAPTER, SYSTEM, PARAMETER, TEMPLATE), as `ollama create -f`.")
@click.option("--base", default=None, help="Base model of an adapter (default: read from adapter_config.json).")
@_remote_options
def create(name, path, modelfile, base, api_url, preset, api_model, key_env, embedding, **spec):
    """Create a model in the store from local files, a Modelfile, or an API (a remote model).

    \b
    xuetu create mine:v1 --from ./merged
    xuetu create deepseek:chat --preset deepseek --api-model deepseek-chat
    xuetu create qwen:plus --api https://dashscope.aliyuncs.com/compatible-mode/v1 --api-model qwen-plus \\
        --key-env DASHSCOPE_API_KEY --price-in 0.8 --price-out 2 --currency CNY"""
    if api_url or preset:
        if path or modelfile:
            raise click.UsageError("a remote model (--api/--preset) takes no --from or -f")
        _create_remote(name, api_url, preset, api_model, key_env, embedding, **spec)
        return
    if (path is None) == (modelfile is None):
        raise click.UsageError("give either --from PATH or -f Modelfile (or, for a remote model, --api URL or "
                               "--preset NAME)")
    if modelfile is not None:
        from xuetu.export.create import create_from_modelfile

        ref = create_from_modelfile(name, modelfile)
    else:
        ref = models.create(name, path, base=base)
    click.echo(f"created {ref.name}")


COMMANDS = [pull, list_, show, rm, cp, create]
