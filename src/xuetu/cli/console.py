"""Where the library's notes (xuetu.notify) go when xuetu runs as a command: `setup` is
`xuetu.notify.to_terminal`, which recipes run as scripts (accelerate launch -m xuetu.train.finetune) call
too, without importing the CLI."""

from __future__ import annotations

from xuetu.notify import to_terminal as setup

__all__ = ["setup"]
