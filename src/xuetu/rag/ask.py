"""`xuetu kb ask`, as a library call: retrieve, assemble the prompt, generate, and return the answer
with the sources it cites.

    from xuetu.rag.ask import ask
    answer = ask("notes", "What is LoRA?", model="smollm2:135m")
    print(answer.text, [c.result.where() for c in answer.citations if c.cited])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

    def to_dict(self) -> dict:
        return {"answer": self.text, "citations": [c.to_dict() for c in self.citations],
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


def context_budget(engine, max_tokens: int) -> int:
    """Tokens left for sources: the model's context less the answer and room for instructions and question."""
    window = int(engine.info().get("context_length") or 2048)
    return max(128, min(CONTEXT_BUDGET, window - max_tokens - 256))


def ask(kb_name: str, question: str, model: str | None = None, k: int = 5, mode: str = "hybrid",
        where: dict | None = None, engine: str = "auto", options: dict | None = None,
        on_text: Callable[[str], None] | None = None) -> Answer:
    from xuetu import models
    from xuetu.engines.base import GenerateOptions
    from xuetu.models.aliases import DEFAULT_MODEL
    from xuetu.rag import kb, retrieve

    base = kb.open_kb(kb_name)
    results = retrieve.search(base, question, k=k, mode=mode, where=where)
    ref = models.resolve(model or DEFAULT_MODEL, pull_missing=True)
    opts = GenerateOptions.build(ref.params, **{"max_tokens": ANSWER_TOKENS, **{
        key: v for key, v in (options or {}).items() if v is not None}})
    eng = models.load(ref, engine=engine)
    try:
        messages, used = build_messages(question, results, lambda t: eng.count_tokens(t),
                                        context_budget(eng, opts.max_tokens), system=ref.system)
        parts, last = [], None
        for chunk in eng.generate(messages, opts):
            parts.append(chunk.text)
            last = chunk
            if on_text and chunk.text:
                on_text(chunk.text)
    finally:
        eng.close()
    text = "".join(parts)
    return Answer(text, citations(text, used), last.prompt_tokens if last else 0, last.completion_tokens if last else 0)
