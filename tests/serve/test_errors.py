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


# -- domain errors to HTTP: one mapping, by type ---------------------------------------------------------------

from xuetu import errors as E  # noqa: E402
from xuetu.runtime.manager import ModelLoading  # noqa: E402
from xuetu.runtime.runner import QueueFull  # noqa: E402
from xuetu.safety.guard import TextTooLong  # noqa: E402
from xuetu.serve.errors import error_body, to_api_error  # noqa: E402
from xuetu.serve.guarding import QuotaExceeded  # noqa: E402


@pytest.mark.parametrize("error, status, code", [
    (E.XuetuError("plain"), 400, "invalid_request"),
    (E.BadInput("top_p must be a number", param="top_p"), 400, "invalid_request"),
    (E.ContextTooLong("too long"), 400, "context_length_exceeded"),
    (E.NotFound("no run named 'x'"), 404, "not_found"),
    (E.NotFound("no knowledge base named 'x'", code="kb_not_found"), 404, "kb_not_found"),
    (E.Conflict("already running"), 409, "conflict"),
    (E.NotAllowed("paths are not accepted"), 403, "not_allowed"),
    (TextTooLong("the text is long"), 413, "request_too_large"),
    (QueueFull(4), 429, "queue_full"),
    (QuotaExceeded("spent"), 429, "quota_exceeded"),
    (ModelLoading("m"), 503, "model_loading"),
    (E.Busy("all slots are busy"), 503, "server_busy"),
    (E.Unavailable("needs 9 GB", code="insufficient_memory"), 503, "insufficient_memory"),
    (E.DownloadError("the hub said 500"), 502, "upstream_error"),
])
def test_each_kind_of_domain_error_has_one_status_whatever_its_text(error, status, code):
    err = to_api_error(error)
    assert (err.status, err.code) == (status, code)
    if isinstance(error, E.Busy):
        assert int(err.headers["Retry-After"]) >= 1
    # the same error with other words maps the same way: nothing reads the message
    error.message = "already exists / no run named / not found"
    assert to_api_error(error).status == status


def test_hint_and_field_reach_the_client_in_each_family():
    err = to_api_error(E.BadInput("top_p must be in (0, 1]", "Try 0.9.", param="top_p"))
    assert err.message == "top_p must be in (0, 1]. Try 0.9."
    openai = error_body("/v1/chat/completions", err.message, err.type, err.code, err.param)
    assert openai == {"error": {"message": err.message, "type": "invalid_request_error", "param": "top_p",
                                "code": "invalid_request"}}
    assert error_body("/api/chat", err.message, err.type, err.code, err.param) == {"error": err.message}


def test_a_model_name_gets_ollamas_words_and_a_near_name():
    pulled = to_api_error(E.ModelNotPulled("model 'qwen' is not pulled yet", "Pull it.", name="qwen"))
    assert pulled.status == 404 and pulled.message.startswith("model 'qwen' not found, try pulling it first")
    near = to_api_error(E.ModelNotFound("model 'smolm2' not found", "Did you mean x? See list.", name="smolm2",
                                        suggestions=["smollm2:135m"]))
    assert near.message == "model 'smolm2' not found. Did you mean smollm2:135m?"


def test_a_bug_is_a_500_that_does_not_echo_its_text():
    err = to_api_error(KeyError("/secret/path/adapter"))
    assert err.status == 500 and "KeyError" in err.message and "secret" not in err.message
