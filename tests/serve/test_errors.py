"""How a request that fails validation is told what is wrong: the field in the request's own names, and the
reason from the branch of a union that had the right type."""

import pydantic
import pytest

from xuetu.serve.errors import describe_validation
from xuetu.serve.openai import protocol as p


def explain(**fields) -> tuple[str, str]:
    with pytest.raises(pydantic.ValidationError) as e:
        p.ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], **fields)
    return describe_validation(e.value.errors())


@pytest.mark.parametrize("stop, where, words", [
    (["x"] * 17, "stop", "at most 16 items"),
    (["x" * 257], "stop.0", "at most 256 characters"),
    ("x" * 257, "stop", "at most 256 characters"),
    (5, "stop", "a valid string or a valid list"),
])
def test_a_union_is_explained_by_the_branch_that_had_the_right_type(stop, where, words):
    field, message = explain(stop=stop)
    assert field == where and message.startswith(where + ": ") and words in message
    assert "constrained" not in message and "[" not in field


def test_no_errors_and_bad_json_have_their_own_words():
    assert describe_validation([]) == ("", "invalid request")
    assert describe_validation([{"type": "json_invalid", "loc": ("body", 0), "msg": "x"}]) == (
        "", "the request body is not valid JSON")
