"""Validation of chat messages before they reach a chat template."""

from __future__ import annotations

from xuetu.errors import XuetuError

ROLES = {"system", "user", "assistant", "tool"}


def check_messages(messages) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise XuetuError("messages must be a non-empty list of {role, content} objects")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m:
            raise XuetuError(f"message {i} must be an object with 'role' and 'content'")
        if m["role"] not in ROLES:
            raise XuetuError(f"message {i} has role {m['role']!r}; use one of {', '.join(sorted(ROLES))}")
        content = m.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise XuetuError(f"message {i}: content must be a string")
        clean.append({**m, "content": content})
    return clean
