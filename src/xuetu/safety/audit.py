"""The audit log: one JSON line per guard event, with personal data masked and keys hashed.

Nothing raw goes in: snippets pass through the PII masker and are cut to 160 characters; an API key
appears as sha256:<12 hex digits>."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from xuetu.safety.pii import mask_pii

_LOCK = threading.Lock()


def log_path(setting: str) -> Path | None:
    if not setting:
        return None
    path = Path(setting)
    if not path.is_absolute():
        from xuetu.home import xuetu_home

        path = xuetu_home() / "logs" / path
    return path


def write(path: Path | None, event: dict) -> None:
    if path is None:
        return
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), **event}
    for f in record.get("findings", []):
        f["match"] = mask_pii(str(f.get("match", "")))[:160]
    if "snippet" in record:
        record["snippet"] = mask_pii(str(record["snippet"]))[:160]
    line = json.dumps(record, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(line)
