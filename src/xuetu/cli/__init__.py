"""The `xuetu` command line. Each verb group lives in its own module and calls one library function.

    xuetu pull smollm2:135m
    xuetu run smollm2:135m "Name the capital of France."
"""

from __future__ import annotations

import sys

import click

from xuetu import __version__
from xuetu.errors import XuetuError


class XuetuGroup(click.Group):
    """Turns XuetuError into a short message and exit code 1, instead of a stack trace."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except XuetuError as e:
            click.secho(f"Error: {e.message}", fg="red", err=True)
            if e.hint:
                click.echo(e.hint, err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(130)


@click.group(cls=XuetuGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="xuetu", message="%(prog)s %(version)s")
def main():
    """学徒 xuetu: pull, fine-tune, evaluate and serve small open LLMs, offline on a laptop.

    Models live in XUETU_HOME (default ~/.xuetu). Start with:

        xuetu pull smollm2:135m
        xuetu run smollm2:135m
    """
    from xuetu.cli import console

    console.setup()


def _register():
    from xuetu.cli import chat, data, evaluate, export, guard, kb, models, prompt, quickstart, serve, train

    for module in (models, chat, serve, data, train, export, evaluate, prompt, kb, guard, quickstart):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
