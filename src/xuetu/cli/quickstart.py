"""`xuetu quickstart`: clean -> fine-tune -> evaluate -> knowledge base -> serve, on the bundled example."""

from __future__ import annotations

import socket
from urllib.parse import quote

import click


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


@click.command()
@click.option("--no-serve", is_flag=True, help="Stop after building everything; do not start the server.")
@click.option("--minutes", default=8.0, show_default=True, type=float, help="Time budget for training.")
@click.option("--steps", default=60, show_default=True, type=int, help="LoRA training steps.")
@click.option("--out", default="ai-tutor:latest", show_default=True, help="Name of the fine-tuned model.")
@click.option("--fresh", is_flag=True, help="Train again even if an earlier quickstart left a tuned model.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve on (another free one if taken).")
def quickstart(no_serve, minutes, steps, out, fresh, host, port):
    """The whole path in one command, on the embedded model and the bundled "AI learning assistant"
    example: clean the data, LoRA fine-tune, compare base and tuned, build a knowledge base, serve
    the tuned model with it and the web app."""
    from xuetu import quickstart as qs

    from xuetu.cli import console

    console.setup(progress=True)  # the steps are what this command shows, on a terminal or not
    result = qs.run(qs.QuickstartArgs(out=out, minutes=minutes, steps=steps, fresh=fresh))
    tuned, base = result.scores.get("tuned", {}), result.scores.get("base", {})
    if tuned and base:
        verdict = "better" if tuned["perplexity"] < base["perplexity"] and tuned["rouge_l"] > base["rouge_l"] else "not better"
        click.echo(f"\nthe tuned model is {verdict} than the base on the held-out questions "
                   f"(perplexity {base['perplexity']:.1f} -> {tuned['perplexity']:.1f}, "
                   f"ROUGE-L {base['rouge_l']:.3f} -> {tuned['rouge_l']:.3f})")
    click.echo(f"\ntry it:  xuetu run {result.model} \"What is LoRA?\"\n"
               f"         xuetu kb ask {result.kb} \"What is RAG?\" --model {result.model}")
    if no_serve:
        return
    import uvicorn

    from xuetu.serve.app import create_app
    from xuetu.serve.args import ServeArgs

    if not _port_free(host, port):
        with socket.socket() as s:
            s.bind((host, 0))
            taken, port = port, s.getsockname()[1]
        click.echo(f"port {taken} is taken; using {port}")
    url = f"http://{host}:{port}/?model={quote(result.model)}&kb={quote(result.kb)}"
    click.secho(f"\nserving {result.model} with the knowledge base '{result.kb}'.\nopen {url}\n"
                "(Ctrl+C stops it)", fg="green")
    uvicorn.run(create_app(ServeArgs(host=host, port=port, models=[result.model])), host=host, port=port,
                log_level="warning", access_log=False)


COMMANDS = [quickstart]
