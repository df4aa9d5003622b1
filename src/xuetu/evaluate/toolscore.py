"""Tool-calling scores, per example (so comparisons can pair them), on a 0-1 scale.

| metric       | an example scores 1 when                                                              |
|--------------|---------------------------------------------------------------------------------------|
| tool_name    | the answer calls the same functions as the reference (none, when it answers in words) |
| tool_args    | the answer's calls equal the reference's, names and arguments alike                   |
| tool_schema  | every call the answer makes is to an offered tool, with arguments its schema accepts  |

Calls are compared as multisets, so parallel calls in another order still match.
"""

from __future__ import annotations

import json

from xuetu.evaluate.examples import Example

TOOL_METRICS = ("tool_name", "tool_args", "tool_schema")


def _names(calls: list[dict]) -> list[str]:
    return sorted(c["name"] for c in calls)


def _canonical(calls: list[dict]) -> list[str]:
    return sorted(json.dumps([c["name"], c["arguments"]], sort_keys=True, ensure_ascii=False) for c in calls)


def _valid(calls: list[dict], tools: list[dict] | None) -> bool:
    from jsonschema import Draft202012Validator

    schemas = {t["function"]["name"]: t["function"].get("parameters") or {} for t in tools or []}
    return all(c["name"] in schemas and Draft202012Validator(schemas[c["name"]]).is_valid(c["arguments"])
               for c in calls)


def render(calls: list[dict]) -> str:
    """Calls as a reader sees them: get_weather(city="Paris"); several joined by "; "."""
    def args(a) -> str:
        if not isinstance(a, dict):
            return json.dumps(a, ensure_ascii=False)
        return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in a.items())
    return "; ".join(f"{c['name']}({args(c.get('arguments'))})" for c in calls)


def shown(text: str, calls: list[dict] | None) -> str:
    """An answer or reference for a report: its words, then "called …" for the calls it makes."""
    return "\n".join(part for part in (text.strip(), calls and "called " + render(calls)) if part)


def per_example(metric: str, predicted: list[list[dict]], examples: list[Example]) -> list[float]:
    if metric == "tool_name":
        return [float(_names(p) == _names(e.calls)) for p, e in zip(predicted, examples)]
    if metric == "tool_args":
        return [float(_canonical(p) == _canonical(e.calls)) for p, e in zip(predicted, examples)]
    if metric == "tool_schema":
        return [float(_valid(p, e.tools)) for p, e in zip(predicted, examples)]
    raise ValueError(metric)
