"""What the library tells a person while it works, without printing.

Library code never writes to the terminal. It reports progress with `say` ("converting the model…")
and what a user should know with `warn` ("12 examples truncated"), through the "xuetu" logger. The
command line (xuetu.cli.console) decides where they go: warnings always to standard error, progress
only on a terminal, so a command's output and its "Error: …" contract never carry them. From Python,
warnings reach standard error through logging's last-resort handler and progress stays silent unless
the "xuetu" logger is given a handler:

    logging.getLogger("xuetu").addHandler(logging.StreamHandler())
    logging.getLogger("xuetu").setLevel(logging.INFO)
"""

from __future__ import annotations

import logging

log = logging.getLogger("xuetu")


def say(msg: str) -> None:
    """A progress note: shown on a terminal by the CLI, silent elsewhere."""
    log.info(msg)


def warn(msg: str) -> None:
    """Something the user should know even when nothing failed."""
    log.warning(msg)
