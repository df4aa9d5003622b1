"""What the library tells a person while it works, without printing.

Library code never writes to the terminal. It reports progress with `say` ("converting the model…"),
what a user should know of the run with `note` ("resuming from step 40"), and what may be wrong with
`warn` ("12 examples truncated"), through the "xuetu" logger. A command (the CLI, or a recipe run as a
script) decides where they go by calling `to_terminal()`: notes and warnings always to standard error,
progress only on a terminal, so nothing a first run does once (a conversion, a download) changes a
command's output or its "Error: …" contract. From Python,
warnings reach standard error through logging's last-resort handler and progress stays silent unless
the "xuetu" logger is given a handler:

    logging.getLogger("xuetu").addHandler(logging.StreamHandler())
    logging.getLogger("xuetu").setLevel(logging.INFO)
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("xuetu")
NOTE = logging.INFO + 5  # between progress (INFO) and warnings
logging.addLevelName(NOTE, "NOTE")


def say(msg: str) -> None:
    """A progress note: shown on a terminal by the CLI, silent elsewhere."""
    log.info(msg)


def note(msg: str) -> None:
    """A fact about this run the user should see on a terminal and in a log alike."""
    log.log(NOTE, msg)


def warn(msg: str) -> None:
    """Something the user should know even when nothing failed."""
    log.warning(msg)


class _Terminal(logging.Handler):
    """Warnings (prefixed "warning:") and notes to standard error always; progress only when it is a terminal
    (or XUETU_PROGRESS=1), so a script that reads a command's output or its "Error: …" line sees the same
    bytes on a fresh machine and on one that has run xuetu before."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.progress: bool | None = None  # None: on a terminal only

    def show_progress(self) -> bool:
        import click

        if self.progress is not None:
            return self.progress
        if os.environ.get("XUETU_PROGRESS", "").lower() in ("1", "true", "yes"):
            return True
        stream = click.get_text_stream("stderr")
        return bool(getattr(stream, "isatty", lambda: False)())

    def emit(self, record: logging.LogRecord) -> None:
        import click

        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            click.echo(f"warning: {msg}", err=True)
        elif record.levelno > logging.INFO or self.show_progress():
            click.echo(msg, err=True)


_TERMINAL = _Terminal()


def to_terminal(progress: bool | None = None) -> None:
    """For commands only: route the library's notes to this process's terminal; `progress` forces progress
    notes on or off."""
    if _TERMINAL not in log.handlers:
        log.addHandler(_TERMINAL)
        log.setLevel(logging.INFO)
        log.propagate = False
    _TERMINAL.progress = progress
