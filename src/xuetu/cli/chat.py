"""Chat verbs: `xuetu run` (one-shot or interactive) and `xuetu tokenize`."""

from __future__ import annotations

import sys
import time

import click

from xuetu import engines, models
from xuetu.engines.base import GenerateOptions
from xuetu.runtime.options import generation_options
from xuetu.models.facts import human_bytes


# The choices are written out, not imported, so `--help` needs no torch; a test checks they match engines.QUANTS.
quant_option = click.option(
    "--quant", type=click.Choice(["int8", "fp16", "bf16"]), default=None,
    help="Load at this precision on the transformers engine: int8 (weight-only, ~4x smaller than fp32), fp16 or "
         "bf16 (GPU). A GGUF is quantised already: use `xuetu export --format gguf --quant q8_0` for llama.cpp.")


def sampling_options(f):
    """The generation flags shared by run and, later, other verbs."""
    for opt in reversed([
        click.option("--temperature", type=float, help="0 = greedy; higher = more varied (default 0.8 or the model's)."),
        click.option("--top-p", type=float, help="Nucleus sampling threshold in (0, 1]."),
        click.option("--top-k", type=int, help="Sample from the k most likely tokens; 0 = off."),
        click.option("-n", "--max-tokens", type=int, help="Most tokens to generate (default 512)."),
        click.option("--seed", type=int, help="Fix the random seed for reproducible answers."),
        click.option("--stop", multiple=True, help="Stop when this string appears (repeatable)."),
        click.option("--repeat-penalty", type=float, help="Penalise recently used tokens; 1 = off."),
    ]):
        f = opt(f)
    return f


guard_option = click.option("--no-guard", is_flag=True, help="Turn the safety guards off for this session.")
policy_option = click.option("--guard-policy", default=None, type=click.Path(), help="Safety policy YAML.")


def make_guard(no_guard: bool, policy: str | None):
    if no_guard:
        return None
    from xuetu.safety import Guard

    return Guard.from_policy(policy)


def guarded_prompt(guard, prompt):
    """(prompt to send, refusal or None): the input guard, as the server applies it."""
    if guard is None:
        return prompt, None
    if isinstance(prompt, str):
        v = guard.check(prompt, "user")
        return (prompt, v.text) if v.blocked else (v.text if v.action == "mask" else prompt, None)
    v, new = guard.check_messages(prompt)
    return (prompt, v.text) if v.blocked else (new, None)


def stream_answer(engine, prompt, opts: GenerateOptions, verbose: bool = False, guard=None) -> str:
    """Print tokens as they arrive; return the whole answer. Ctrl-C stops the answer, not the program.
    With a guard, the prompt is checked first and the answer streams through its hold-back window."""
    prompt, refused = guarded_prompt(guard, prompt)
    if refused is not None:
        click.secho(refused, fg="yellow")
        return ""
    sg = guard.stream() if guard is not None else None
    start = time.perf_counter()
    first = None
    parts = []
    chunk = None
    try:
        for chunk in engine.generate(prompt, opts):
            if first is None:
                first = time.perf_counter()
            text = sg.feed(chunk.text) if sg else chunk.text
            parts.append(text)
            sys.stdout.write(text)
            sys.stdout.flush()
            if sg is not None and sg.blocked:
                break
        if sg is not None and not sg.blocked:
            tail = sg.close()
            parts.append(tail)
            sys.stdout.write(tail)
    except KeyboardInterrupt:
        sys.stdout.write(" [stopped]")
    if sg is not None and sg.blocked:
        sys.stdout.write("\n")
        click.secho(sg.verdict.text, fg="yellow", nl=False)
    sys.stdout.write("\n")
    if verbose and chunk is not None:
        end = time.perf_counter()
        decode = max(end - (first or end), 1e-9)
        click.echo(f"prompt tokens: {chunk.prompt_tokens}  generated: {chunk.completion_tokens}  "
                   f"first token: {((first or end) - start) * 1000:.0f} ms  "
                   f"rate: {max(chunk.completion_tokens - 1, 0) / decode:.1f} tokens/s  "
                   f"finish: {chunk.finish_reason}", err=True)
    return "".join(parts)


@click.command()
@click.argument("name")
@click.argument("prompt", required=False)
@sampling_options
@click.option("--system", default=None, help="System prompt.")
@click.option("--engine", default="auto", help="auto, transformers or llama.cpp.")
@quant_option
@click.option("-v", "--verbose", is_flag=True, help="Print token counts and speed after each answer.")
@guard_option
@policy_option
def run(name, prompt, temperature, top_p, top_k, max_tokens, seed, stop, repeat_penalty, system, engine, quant,
        verbose, no_guard, guard_policy):
    """Chat with a model: one answer for PROMPT, or an interactive session without it.

    In the session: /bye to quit, /clear to forget the conversation, /system TEXT to set the
    system prompt, /set PARAM VALUE to change a setting, /? for help.
    """
    ref = models.resolve(name, pull_missing=True)
    system = system or ref.system  # a model created with a system prompt uses it by default
    opts = generation_options(ref.params, temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_tokens,
                              seed=seed, stop=stop, repeat_penalty=repeat_penalty)
    if prompt is None and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise click.UsageError("no prompt given on the command line or on standard input")
    guard = make_guard(no_guard, guard_policy)
    eng = engines.load(ref, engine=engine, quant=quant)
    if verbose:
        info = eng.info()
        weights = f" {info['quant'] or info['dtype']}, weights {human_bytes(info['weights_bytes'])}" if "weights_bytes" in info else ""
        click.echo(f"[{info['engine']}{weights}] {ref.name}", err=True)
    if prompt is not None:
        if ref.kind == "base":
            stream_answer(eng, prompt, opts, verbose, guard)
        else:
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
            stream_answer(eng, messages, opts, verbose, guard)
        return
    from xuetu.cli.repl import chat_session

    chat_session(eng, ref, opts, system=system, verbose=verbose, guard=guard)


@click.command(name="tokenize")
@click.argument("name")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tokenize_(name, text, as_json):
    """Show how NAME's tokenizer splits TEXT into tokens, and count them."""
    import json

    from xuetu.models.tokens import tokenize as split

    ref = models.resolve(name)
    views = split(ref, text)
    if as_json:
        click.echo(json.dumps([v.__dict__ for v in views], ensure_ascii=False, indent=2))
        return
    click.echo(f"{'#':>4}  {'ID':>7}  TOKEN")
    for i, v in enumerate(views):
        shown = json.dumps(v.text, ensure_ascii=False)  # quoted, so leading spaces and newlines show
        part = f"  (token {v.part} of {v.parts} that share these characters)" if v.parts > 1 else ""
        click.echo(f"{i:>4}  {v.id:>7}  {shown}{part}")
    chars = len(text)
    click.echo(f"\n{len(views)} tokens for {chars} characters ({len(views) / max(chars, 1):.2f} tokens per character)")


COMMANDS = [run, tokenize_]
