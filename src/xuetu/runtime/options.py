"""The one mapping from what a caller asked for to the options a generation runs with.

Both API families and the CLI name the same knobs differently (OpenAI's max_completion_tokens, Ollama's
num_predict, the CLI's --max-tokens); each translates its names and calls `generation_options`, which layers
defaults < the model's own parameters (its Modelfile) < the request, validates, and applies the caller's cap.
"""

from __future__ import annotations

from xuetu.engines.base import GenerateOptions


def generation_options(model_params: dict | None, *, temperature: float | None = None, top_p: float | None = None,
                       top_k: int | None = None, max_tokens: int | None = None, seed: int | None = None,
                       stop: str | list[str] | None = None, repeat_penalty: float | None = None,
                       format: str | dict | None = None, max_allowed: int | None = None) -> GenerateOptions:
    """Options for one generation; None means "not given". A max_tokens of 0 or less (Ollama's num_predict -1
    and -2) asks for as many as allowed; `max_allowed` (the server's --max-tokens) caps whatever was asked.
    Raises BadInput naming the field when a value is out of range."""
    if max_tokens is not None and max_tokens <= 0 and max_allowed is not None:
        max_tokens = max_allowed
    if isinstance(stop, (list, tuple)):
        stop = list(stop) or None
    options = GenerateOptions.build(model_params, temperature=temperature, top_p=top_p, top_k=top_k,
                                    max_tokens=max_tokens, seed=seed, stop=stop, repeat_penalty=repeat_penalty,
                                    format=format)
    if max_allowed is not None and options.max_tokens > max_allowed:
        options.max_tokens = max_allowed
    return options
