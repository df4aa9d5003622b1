"""What the library tells a person while it works, without printing.

Library code never writes to the terminal. It reports progress with `say` ("converting the model…"),
what a user should know of the run with `note` ("resuming from step 40"), and what may be wrong with
`warn` ("12 examples truncated"), through the "xuetu" logger. The command line (xuetu.cli.console)
decides where they go: notes and warnings always to standard error, progress only on a terminal, so
nothing a first run does once (a conversion, a download) changes a command's output or its "Error: …"
contract. From Python,
warnings reach standard error through logging's last-resort handler and progress stays silent unless
the "xuetu" logger is given a handler:

    logging.getLogger("xuetu").addHandler(logging.StreamHandler())
    logging.getLogger("xuetu").setLevel(logging.INFO)
"""

from __future__ import annotations

import logging

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
