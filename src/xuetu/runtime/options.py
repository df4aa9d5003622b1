"""The one mapping from what a caller asked for to the options a generation runs with.

Both API families and the CLI name the same knobs differently (OpenAI's max_completion_tokens, Ollama's
num_predict, the CLI's --max-tokens); each translates its names and calls `generation_options`, which layers
defaults < the model's own parameters (its Modelfile) < the request, validates, and applies the caller's cap.
"""

from __future__ import annotations

from xuetu.engines.base import GenerateOptions

FORCED_CALL_PENALTY = 1.0
"""The repeat penalty of a forced tool call (tool_choice "required" or a named function) when nothing else sets
one. A call copies its arguments from the conversation (a name, a city, a number), and the default penalty, which
looks back over the prompt too, pushes the model off exactly those tokens: SmolLM2-135M then wrote "<string>"
for a Japanese company name it was asked to pass on. The call's schema bounds its strings, so the loops the
penalty guards prose against cannot run on."""


def generation_options(model_params: dict | None, *, temperature: float | None = None, top_p: float | None = None,
                       top_k: int | None = None, max_tokens: int | None = None, seed: int | None = None,
                       stop: str | list[str] | None = None, repeat_penalty: float | None = None,
                       format: str | dict | None = None, max_allowed: int | None = None,
                       forced_call: bool = False) -> GenerateOptions:
    """Options for one generation; None means "not given". A max_tokens of 0 or less (Ollama's num_predict -1
    and -2) asks for as many as allowed; `max_allowed` (the server's --max-tokens) caps whatever was asked.
    `forced_call`: the answer is a tool call the request forces, so it has no repeat penalty unless the request
    or the model's parameters set one (FORCED_CALL_PENALTY). Raises BadInput naming the field when a value is
    out of range."""
    if max_tokens is not None and max_tokens <= 0 and max_allowed is not None:
        max_tokens = max_allowed
    if forced_call and repeat_penalty is None and "repeat_penalty" not in (model_params or {}):
        repeat_penalty = FORCED_CALL_PENALTY
    if isinstance(stop, (list, tuple)):
        stop = list(stop) or None
    options = GenerateOptions.build(model_params, temperature=temperature, top_p=top_p, top_k=top_k,
                                    max_tokens=max_tokens, seed=seed, stop=stop, repeat_penalty=repeat_penalty,
                                    format=format)
    if max_allowed is not None and options.max_tokens > max_allowed:
        options.max_tokens = max_allowed
    return options
