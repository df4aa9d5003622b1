"""学徒 xuetu: take a small open LLM from download to a deployed assistant.

The Python API mirrors the CLI:

    import xuetu
    engine = xuetu.load("smollm2:135m")
    for chunk in engine.generate([{"role": "user", "content": "Hi"}]):
        print(chunk.text, end="")
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `xuetu --version` does not import torch.
    if name in {"resolve", "load", "pull"}:
        from xuetu import models

        return getattr(models, name)
    raise AttributeError(name)
