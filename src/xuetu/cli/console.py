"""Where the library's notes (xuetu.notify) go when xuetu runs as a command.

Warnings (prefixed "warning:") and notes go to standard error always. Progress goes there only when it is
a terminal (or XUETU_PROGRESS=1), so a script that reads a command's output or its "Error: …" line sees
the same bytes on a fresh machine and on one that has run xuetu before.
"""

from __future__ import annotations

import logging
import os

import click


class _Console(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.progress: bool | None = None  # None: on a terminal only

    def show_progress(self) -> bool:
        if self.progress is not None:
            return self.progress
        if os.environ.get("XUETU_PROGRESS", "").lower() in ("1", "true", "yes"):
            return True
        stream = click.get_text_stream("stderr")
        return bool(getattr(stream, "isatty", lambda: False)())

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            click.echo(f"warning: {msg}", err=True)
        elif record.levelno > logging.INFO or self.show_progress():
            click.echo(msg, err=True)


_HANDLER = _Console()


def setup(progress: bool | None = None) -> None:
    """Route the library's notes to this process's terminal; `progress` forces progress notes on or off."""
    log = logging.getLogger("xuetu")
    if _HANDLER not in log.handlers:
        log.addHandler(_HANDLER)
        log.setLevel(logging.INFO)
        log.propagate = False
    _HANDLER.progress = progress
