"""`xuetu kb ask`, as a library call: retrieve, assemble the prompt, generate, and return the answer
with the sources it cites.

    from xuetu.rag.ask import ask
    answer = ask("notes", "What is LoRA?", model="smollm2:135m")
    print(answer.text, [c.result.where() for c in answer.citations if c.cited])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from xuetu.rag.answer import Citation, build_messages, citations

ANSWER_TOKENS = 384
CONTEXT_BUDGET = 1536
"""At most this many tokens of retrieved text: small models lose the thread in longer prompts."""


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    """"content_filter" when a guard blocked the question or stopped the answer"""
    guard: list[dict] = field(default_factory=list)
    """What the guards found: [{"where": "input"|"document"|"output", "action", "categories", "source"?}]"""

    def to_dict(self) -> dict:
        return {"answer": self.text, "citations": [c.to_dict() for c in self.citations],
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "finish_reason": self.finish_reason, "guard": self.guard}


def context_budget(engine, max_tokens: int) -> int:
    """Tokens left for sources: the model's context less the answer and room for instructions and question."""
    window = int(engine.info().get("context_length") or 2048)
    return max(128, min(CONTEXT_BUDGET, window - max_tokens - 256))


def ask(kb_name: str, question: str, model: str | None = None, k: int = 5, mode: str = "hybrid",
        where: dict | None = None, engine: str = "auto", options: dict | None = None,
        on_text: Callable[[str], None] | None = None, guard=None) -> Answer:
    """`guard` (a xuetu.safety.Guard) checks the question, leaves out retrieved chunks it blocks (planted
    instructions) and streams the answer through its hold-back window."""
    from xuetu import engines, models
    from xuetu.engines.base import GenerateOptions
    from xuetu.models.aliases import DEFAULT_MODEL
    from xuetu.rag import kb, retrieve

    events = []
    if guard is not None:
        v = guard.check(question, "user")
        if v.action != "pass":
            events.append({"where": "input", "action": v.action, "categories": v.categories})
        if v.blocked:
            return Answer(v.text, [], finish_reason="content_filter", guard=events)
        question = v.text if v.action == "mask" else question
    base = kb.open_kb(kb_name)
    results = retrieve.search(base, question, k=k, mode=mode, where=where)
    if guard is not None:
        kept = []
        for r in results:
            v = guard.check(r.text, "document")
            if v.action != "pass":
                events.append({"where": "document", "action": v.action, "categories": v.categories,
                               "source": r.where()})
            if not v.blocked:
                kept.append(r)
        results = kept
    ref = models.resolve(model or DEFAULT_MODEL, pull_missing=True)
    opts = GenerateOptions.build(ref.params, **{"max_tokens": ANSWER_TOKENS, **{
        key: v for key, v in (options or {}).items() if v is not None}})
    eng = engines.load(ref, engine=engine)
    try:
        messages, used = build_messages(question, results, lambda t: eng.count_tokens(t),
                                        context_budget(eng, opts.max_tokens), system=ref.system)
        parts, last = [], None
        sg = guard.stream() if guard is not None else None
        for chunk in eng.generate(messages, opts):
            text = sg.feed(chunk.text) if sg else chunk.text
            if sg is not None and chunk.finish_reason is not None and not sg.blocked:
                text += sg.close()
            parts.append(text)
            last = chunk
            if on_text and text:
                on_text(text)
            if sg is not None and sg.blocked:
                break
    finally:
        eng.close()
    text = "".join(parts)
    finish = last.finish_reason if last else None
    if sg is not None and sg.blocked:
        events.append({"where": "output", "action": "block", "categories": sg.verdict.categories})
        text, finish = (text + "\n\n" if text else "") + sg.verdict.text, "content_filter"
        if on_text:
            on_text("\n\n" + sg.verdict.text)
    return Answer(text, citations(text, used), last.prompt_tokens if last else 0, last.completion_tokens if last else 0,
                  finish, events)
