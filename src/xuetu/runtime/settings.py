"""What the runtime needs to know from whoever runs it: the engine and precision to prefer, and the caps on
resident models, memory, queues and batches. `xuetu serve` passes its ServeArgs, which has these fields;
anything else with them will do."""

from __future__ import annotations

from typing import Protocol

from xuetu.errors import BadInput


class RuntimeSettings(Protocol):
    engine: str
    """auto, transformers, llama.cpp or vllm."""
    quant: str | None
    """int8, fp16, bf16 or None: the precision the transformers engine loads weights in."""
    max_loaded: int
    """Most models resident at once."""
    max_memory: int
    """Most bytes of weights resident at once."""
    max_queue: int
    """Most requests waiting or running per model."""
    max_batch: int
    """Most answers decoded together on the batching runner."""
    keep_alive_seconds: float | None
    """How long an idle model stays loaded; None is forever."""
    models: list[str]
    """Models loaded at start and never unloaded."""


def parse_duration(value) -> float | None:
    """Ollama's keep_alive: "5m", "1h30m", "30s", a number of seconds; negative means forever (None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadInput(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return None if value < 0 else float(value)
    text = str(value).strip().lower()
    try:
        seconds = float(text)
        return None if seconds < 0 else seconds
    except ValueError:
        pass
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total, number = 0.0, ""
    i = 0
    negative = text.startswith("-")
    text = text.lstrip("-")
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text[i:i + 2] == "ms" else ch
        if unit not in units or not number:
            raise BadInput(f"invalid duration {value!r}", 'Use forms like "30s", "5m", "1h", 0 or -1.')
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise BadInput(f"invalid duration {value!r}: a number needs a unit", 'Use forms like "30s", "5m", "1h".')
    return None if negative else total
