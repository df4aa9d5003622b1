"""The schema a forced call decodes under: both grammar engines take it, and what it admits is a valid call."""

from __future__ import annotations

import json

import pytest
from jsonschema import ValidationError, validate

from xuetu.tools import parse_choice, parse_tools
from xuetu.tools.constrain import MAX_STRING, forced_format

TOOLS = parse_tools([
    {"type": "function", "function": {"name": "search", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}, "top": {"type": "integer", "minimum": 1}},
        "required": ["query"]}}},
    {"type": "function", "function": {"name": "now"}},
])


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "search"}}])
def test_both_grammar_engines_take_the_call_schema(choice):
    import llguidance
    from llama_cpp.llama_grammar import LlamaGrammar

    fmt = forced_format(TOOLS, parse_choice(choice, TOOLS))
    assert llguidance.LLMatcher.validate_grammar(llguidance.LLMatcher.grammar_from_json_schema(json.dumps(fmt))) == ""
    assert LlamaGrammar.from_json_schema(json.dumps(fmt), verbose=False) is not None


def test_the_schema_admits_valid_calls_only_and_bounds_open_strings():
    fmt = forced_format(TOOLS, parse_choice({"type": "function", "function": {"name": "search"}}, TOOLS))
    validate({"name": "search", "arguments": {"query": "LoRA", "top": 3}}, fmt)
    for bad in ({"name": "now", "arguments": {}}, {"name": "search", "arguments": {"top": 3}},
                {"name": "search", "arguments": {"query": "x" * (MAX_STRING + 1)}},
                {"name": "search", "arguments": {"query": "x", "extra": 1}}):
        with pytest.raises(ValidationError):
            validate(bad, fmt)
    assert fmt["x-guidance"] == {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}


def test_auto_and_none_do_not_constrain():
    assert forced_format(TOOLS, parse_choice("auto", TOOLS)) is None
    assert forced_format(TOOLS, parse_choice("none", TOOLS)) is None
