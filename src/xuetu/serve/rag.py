"""Knowledge bases in the server: which one a chat request names, and the retrieval that rewrites its
messages into a cited-sources prompt. Both API families call this; routers only add the citations
to their own reply shapes.

A request names a knowledge base with the extension field `"kb": "NAME"`, or with the model alias
`MODEL@KB` (for clients that cannot send extra fields).
"""

from __future__ import annotations

import asyncio
import threading

from xuetu.errors import BadInput, XuetuError
from xuetu.serve import pools

_OPEN: dict[str, object] = {}
_OPEN_LOCK = threading.Lock()


def split_model(model: str, kb: str | None) -> tuple[str, str | None]:
    if kb is None and isinstance(model, str) and "@" in model:
        model, kb = model.rsplit("@", 1)
    if kb is not None and not kb:
        raise BadInput("kb must name a knowledge base", param="kb")
    return model, kb


def open_cached(name: str):
    """One KnowledgeBase object per name per server: its store client and BM25 index stay loaded."""
    from xuetu.rag import kb

    with _OPEN_LOCK:
        base = _OPEN.get(name)
        if base is not None and (base.path / "manifest.json").is_file():
            base.refresh()
            return base
        try:
            base = kb.open_kb(name)
        except XuetuError as e:
            e.param = e.param or "kb"
            raise
        _OPEN[name] = base
        return base


def forget(name: str) -> None:
    with _OPEN_LOCK:
        base = _OPEN.pop(name, None)
    if base is not None:
        base.close()


async def augment(lease, messages: list[dict], kb_name: str, guard=None, k: int = 5) -> tuple[list[dict], list]:
    """Messages with the retrieved sources put before the last user turn, and the sources used."""
    from xuetu.rag import retrieve
    from xuetu.rag.answer import build_messages
    from xuetu.rag.ask import CONTEXT_BUDGET

    base = open_cached(kb_name)
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        raise BadInput("a knowledge-base request needs a user message", param="messages")
    last = users[-1]
    question = messages[last]["content"]
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or lease.ref.system
    history = [m for m in messages[:last] if m["role"] != "system"]
    from xuetu.serve.guarding import check_documents

    try:
        results = await pools.run("heavy", retrieve.search, base, question, k)
    except XuetuError as e:
        e.param = e.param or "messages"
        raise
    results = await pools.run("guard", check_documents, guard, results)  # chunks carrying planted instructions are left out

    def count(text: str) -> int:
        return len(lease.encoder.encode(text))

    new, used = await asyncio.to_thread(build_messages, question, results, count, CONTEXT_BUDGET, system, history)
    return new + messages[last + 1:], used


def citations_payload(text: str, used: list) -> list[dict]:
    from xuetu.rag.answer import citations

    return [c.to_dict() for c in citations(text, used)]
