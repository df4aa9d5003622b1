"""Server verbs: `xuetu serve` runs the OpenAI- and Ollama-compatible API; `xuetu ps` asks it what is loaded."""

from __future__ import annotations

import os
import re

import click

from xuetu.cli.chat import quant_option
from xuetu.errors import XuetuError


def parse_size(text: str) -> int:
    """'8GB', '512MiB', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?i?b?)?\s*", text.lower())
    if not m:
        raise click.BadParameter(f"{text!r} is not a size; use e.g. 8GB or 512MiB")
    number, unit = float(m.group(1)), (m.group(2) or "").rstrip("b")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
    if unit not in scale:
        raise click.BadParameter(f"unknown unit in {text!r}")
    return int(number * scale[unit])


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 exposes it to the network).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--model", "models_", multiple=True, help="Load at start-up and keep loaded (repeatable).")
@click.option("--api-key", "api_keys", multiple=True, help="Require this bearer key (repeatable; XUETU_API_KEYS too).")
@click.option("--engine", default="auto", show_default=True, help="auto, transformers, llama.cpp or vllm.")
@quant_option
@click.option("--keep-alive", default="5m", show_default=True, help="How long idle models stay loaded (-1: forever).")
@click.option("--max-loaded", default=3, show_default=True, help="Most models resident at once.")
@click.option("--max-memory", default=None, help="Most memory for weights, e.g. 8GB (default: 70% of RAM).")
@click.option("--max-queue", default=64, show_default=True, help="Requests queued per model before 429.")
@click.option("--max-batch", default=16, show_default=True, help="Sequences batched together (transformers engine).")
@click.option("--max-tokens", default=4096, show_default=True, help="Cap on tokens generated per request.")
@click.option("--max-body", default="8MB", show_default=True, help="Largest request body.")
@click.option("--max-upload", default="64MB", show_default=True, help="Largest file uploaded to a knowledge base.")
@click.option("--request-timeout", default=600.0, show_default=True, type=float,
              help="Seconds a request may take; then 504, or a stream is ended.")
@click.option("--origin", "--cors", "cors_origins", multiple=True, help="Let pages from this browser origin call the "
              "API, with CORS (repeatable; XUETU_ORIGINS too; '*' for any). Same-origin and loopback pages need none.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, help="Answer requests for this host name too "
              "(repeatable; XUETU_HOSTS too; '.example.com' for a domain, '*' for any). Loopback names and IP "
              "addresses always pass; other names are refused against DNS rebinding.")
@click.option("--no-access-log", is_flag=True, help="Do not log each request.")
@click.option("--guard-policy", default=None, type=click.Path(), help="Safety policy YAML: actions per category "
              "and API key, rate limits, quotas, audit log (see docs/safety.md).")
@click.option("--no-guard", is_flag=True, help="Turn the safety guards off (moderation, injection, personal data).")
@click.option("--import-dir", default=None, type=click.Path(file_okay=False), help="The one folder whose entries "
              "/api/create may name in `from` (default: none; over HTTP `from` names stored models only).")
@click.option("--max-import", default="20GB", show_default=True, help="Largest import-folder entry /api/create copies.")
@click.option("--allow-overwrite", is_flag=True, help='Let /api/create and /api/copy replace a model when the '
              'request says "overwrite": true.')
@click.option("--qdrant-url", default=None, help='The Qdrant server for knowledge bases with store "qdrant".')
@click.option("--kb-location", "kb_locations", multiple=True, type=click.Path(file_okay=False),
              help="A folder HTTP clients may name as a knowledge base's location (repeatable).")
@click.option("--max-train-steps", default=2000, show_default=True, help="Most steps of a fine-tune started over HTTP.")
@click.option("--max-train-minutes", default=60.0, show_default=True, help="Wall time after which it is stopped.")
def serve(host, port, models_, api_keys, engine, quant, keep_alive, max_loaded, max_memory, max_queue, max_batch, max_tokens,
          max_body, max_upload, request_timeout, cors_origins, allowed_hosts, no_access_log, guard_policy, no_guard,
          import_dir, max_import, allow_overwrite, qdrant_url, kb_locations, max_train_steps, max_train_minutes):
    """Serve models over OpenAI- (/v1) and Ollama-compatible (/api) HTTP APIs."""
    import uvicorn

    from xuetu import models
    from xuetu.serve.app import create_app
    from xuetu.serve.args import ServeArgs

    extra = {"max_memory": parse_size(max_memory)} if max_memory else {}
    args = ServeArgs(host=host, port=port, models=list(models_), api_keys=list(api_keys), engine=engine, quant=quant,
                     keep_alive=keep_alive, max_loaded=max_loaded, max_queue=max_queue, max_batch=max_batch,
                     max_tokens=max_tokens, max_body_bytes=parse_size(max_body),
                     max_upload_bytes=parse_size(max_upload), request_timeout=request_timeout,
                     cors_origins=list(cors_origins), allowed_hosts=list(allowed_hosts),
                     access_log=not no_access_log, guard=not no_guard, guard_policy=guard_policy,
                     import_dir=import_dir, max_import_bytes=parse_size(max_import), allow_overwrite=allow_overwrite,
                     qdrant_url=qdrant_url, kb_locations=list(kb_locations), max_train_steps=max_train_steps,
                     max_train_minutes=max_train_minutes, **extra)
    for name in args.models:  # unknown names fail now, not on the first request
        models.resolve(name, pull_missing=True)
    if host not in ("127.0.0.1", "localhost", "::1") and not args.api_keys:
        click.secho(f"warning: listening on {host} with no API key: anyone who can reach it can use it", fg="yellow",
                    err=True)
    if guard_policy and not args.api_keys:
        from xuetu.safety import policy

        if policy.load(guard_policy).keys:
            click.secho("warning: the guard policy sets per-key actions and limits, but without --api-key no key is "
                        "authenticated: they do not apply, and limits count per client address", fg="yellow", err=True)
    click.echo(f"xuetu serving on http://{host}:{port}  (OpenAI: /v1  Ollama: /api  metrics: /metrics)", err=True)
    try:
        uvicorn.run(create_app(args), host=host, port=port, log_level="warning", access_log=False)
    except OSError as e:
        raise XuetuError(f"cannot listen on {host}:{port}: {e.strerror}", "Pick another port with --port.") from None


@click.command()
@click.option("--url", default=lambda: os.environ.get("XUETU_URL", "http://127.0.0.1:8000"), show_default="XUETU_URL or http://127.0.0.1:8000")
@click.option("--api-key", default=lambda: os.environ.get("XUETU_API_KEY"), help="Bearer key (XUETU_API_KEY).")
def ps(url, api_key):
    """List the models a running server has loaded."""
    import datetime as dt

    import httpx

    from xuetu.models.facts import human_bytes

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = httpx.get(url.rstrip("/") + "/api/ps", headers=headers, timeout=10)
    except httpx.TransportError:
        raise XuetuError(f"no xuetu server answers at {url}", "Start one with `xuetu serve`, or pass --url.") from None
    if r.status_code != 200:
        raise XuetuError(f"the server answered HTTP {r.status_code}: {r.text[:200]}")
    click.echo(f"{'NAME':<32} {'ENGINE':<14} {'SIZE':>10}  {'QUEUE':>5}  UNTIL")
    for m in r.json()["models"]:
        until = m["expires_at"]
        if not until.startswith("9999"):
            left = dt.datetime.fromisoformat(until) - dt.datetime.now(dt.timezone.utc)
            until = f"{max(int(left.total_seconds()), 0)} s from now"
        else:
            until = "forever"
        adapters = f" +{len(m['adapters'])} adapters" if m.get("adapters") else ""
        click.echo(f"{m['name'] + adapters:<32} {m.get('engine', ''):<14} {human_bytes(m['size']):>10}  "
                   f"{m.get('queue', 0):>5}  {until}")


COMMANDS = [serve, ps]
