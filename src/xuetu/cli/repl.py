"""The interactive chat session of `xuetu run`, with history kept in XUETU_HOME/history."""

from __future__ import annotations

import dataclasses

import click

from xuetu.cli.chat import stream_answer
from xuetu.engines.base import GenerateOptions
from xuetu.errors import ContextTooLong, XuetuError
from xuetu.home import xuetu_home

HELP = """Commands:
  /bye              quit (Ctrl-D works too)
  /clear            forget the conversation
  /system [TEXT]    show or set the system prompt
  /set PARAM VALUE  change temperature, top_p, top_k, max_tokens, seed or repeat_penalty
  /show             show the current settings
  /?                this help
Ctrl-C stops an answer."""


def _readline():
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return None
    path = xuetu_home() / "history"
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(1000)
    return readline, path


def _set(opts: GenerateOptions, args: list[str]) -> GenerateOptions:
    if len(args) != 2:
        raise XuetuError("usage: /set PARAM VALUE, e.g. /set temperature 0.5")
    key, raw = args[0].replace("-", "_"), args[1]
    fields = {f.name: f for f in dataclasses.fields(opts)}
    if key not in fields or key == "stop":
        raise XuetuError(f"unknown setting {key!r}", "Settings: temperature, top_p, top_k, max_tokens, seed, repeat_penalty.")
    try:
        value = int(raw) if key in {"top_k", "max_tokens", "seed"} else float(raw)
    except ValueError:
        raise XuetuError(f"{key} needs a number, got {raw!r}") from None
    return dataclasses.replace(opts, **{key: value})


def chat_session(engine, ref, opts: GenerateOptions, system: str | None = None, verbose: bool = False,
                 guard=None) -> None:
    rl = _readline()
    messages: list[dict] = []
    click.echo(f"Chatting with {ref.name}. Type /? for help, /bye to quit.")
    try:
        while True:
            try:
                line = input(">>> ")
            except EOFError:
                click.echo()
                break
            except KeyboardInterrupt:
                click.echo()
                continue
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                cmd, *args = text.split(maxsplit=1)
                args = args[0].split() if args and cmd == "/set" else args
                if cmd in ("/bye", "/exit", "/quit"):
                    break
                elif cmd == "/clear":
                    messages = []
                    click.echo("Conversation cleared.")
                elif cmd == "/system":
                    if args:
                        system = args[0]
                        click.echo("System prompt set.")
                    else:
                        click.echo(system or "(no system prompt)")
                elif cmd == "/set":
                    try:
                        opts = _set(opts, args)
                        click.echo("Set.")
                    except XuetuError as e:
                        click.secho(str(e), fg="red")
                elif cmd == "/show":
                    for key, value in opts.to_dict().items():
                        click.echo(f"  {key:<16}{value}")
                elif cmd in ("/?", "/help"):
                    click.echo(HELP)
                else:
                    click.secho(f"Unknown command {cmd}. Type /? for help.", fg="yellow")
                continue
            if ref.kind == "base":  # no chat template: each line is continued on its own
                stream_answer(engine, text, opts, verbose, guard)
                continue
            turn = messages + [{"role": "user", "content": text}]
            prompt = ([{"role": "system", "content": system}] if system else []) + turn
            try:
                answer = stream_answer(engine, prompt, opts, verbose, guard)
            except ContextTooLong as e:
                click.secho(f"{e.message}. Type /clear to start afresh.", fg="red")
                continue
            messages = turn + [{"role": "assistant", "content": answer}]
    finally:
        if rl:
            readline, path = rl
            try:
                readline.write_history_file(path)
            except OSError:
                pass
