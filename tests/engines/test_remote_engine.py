"""The remote engine against a real HTTP upstream (tests/helpers/fakeapi.py): streaming, usage, tool calls,
retries with Retry-After, cancellation, and one clear error for each way a provider fails."""

from __future__ import annotations

import threading
import time

import pytest

from helpers.fakeapi import FakeAPI
from helpers.server import free_port
from xuetu import engines
from xuetu.engines.base import GenerateOptions
from xuetu.errors import BadInput, Busy, UpstreamError, XuetuError
from xuetu.models.remote import create_remote

KEY = "sk-test-remote-0123456789"


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", KEY)
    with FakeAPI(key=KEY) as api:
        yield api


def _engine(fake, model="echo", **spec):
    ref = create_remote(f"fake:{model.replace('_', '-')}", url=fake.url, api_model=model, key_env="FAKE_API_KEY",
                        **spec)
    return engines.load(ref)


def _run(engine, messages, **opts):
    return list(engine.generate(messages, GenerateOptions(**opts)))


def test_streams_the_answer_with_the_providers_usage(fake):
    engine = _engine(fake)
    assert engine.name == "remote"
    chunks = _run(engine, [{"role": "user", "content": "hello there"}], temperature=0, max_tokens=64, stop=["X"])
    assert "".join(c.text for c in chunks) == "You said: hello there "
    assert [c.finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert (chunks[-1].prompt_tokens, chunks[-1].completion_tokens) == (11, 4)  # the fake's usage, not estimates
    body = fake.chat_requests()[-1]["body"]
    assert body["model"] == "echo" and body["stream"] is True and body["max_tokens"] == 64
    assert body["stop"] == ["X"] and body["temperature"] == 0
    assert fake.requests[-1]["auth"] == f"Bearer {KEY}"


def test_tool_calls_come_back_whole_from_fragments(fake):
    engine = _engine(fake, "tools")
    tools = {"tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
             "tool_choice": "auto"}
    history = [{"role": "user", "content": "weather?"},
               {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "weather",
                                                                                  "arguments": {"city": "Oslo"}}}]},
               {"role": "tool", "content": "cold"}, {"role": "user", "content": "and Paris?"}]
    chunks = list(engine.generate(engine.encode(history, tools=tools), GenerateOptions(temperature=0)))
    last = chunks[-1]
    assert last.finish_reason == "tool_calls"
    assert last.tool_calls == [{"id": "call_fake1", "name": "weather", "arguments": {"city": "Paris"}}]
    sent = fake.chat_requests()[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'  # OpenAI's wire shape
    assert sent[2]["tool_call_id"] == sent[1]["tool_calls"][0]["id"]  # Ollama-shaped results get their ids


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_honour_retry_after(fake, status):
    fake.fail["echo"] = [status, status]
    fake.retry_after = 0.6
    engine = _engine(fake)
    start = time.perf_counter()
    chunks = _run(engine, [{"role": "user", "content": "hi"}])
    assert chunks[-1].finish_reason == "stop"
    assert len(fake.chat_requests()) == 3
    assert time.perf_counter() - start >= 1.2  # waited as told, twice


def test_a_provider_that_stays_rate_limited_is_busy_with_its_retry_after(fake):
    fake.fail["echo"] = [429] * 3
    fake.retry_after = 0.1
    engine = _engine(fake, retries=2)
    with pytest.raises(Busy) as err:
        _run(engine, [{"role": "user", "content": "hi"}])
    assert "rate-limiting" in err.value.message and err.value.retry_after >= 0.1
    assert len(fake.chat_requests()) == 3


def test_a_long_retry_after_is_reported_not_waited(fake):
    fake.fail["echo"] = [429]
    fake.retry_after = 3600
    start = time.perf_counter()
    with pytest.raises(Busy) as err:
        _run(_engine(fake), [{"role": "user", "content": "hi"}])
    assert time.perf_counter() - start < 5 and err.value.retry_after == 3600


def test_a_wrong_key_names_the_provider_and_the_variable_but_not_the_key(fake, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", "sk-wrong-key-987654321")
    with pytest.raises(UpstreamError) as err:
        _run(_engine(fake), [{"role": "user", "content": "hi"}])
    text = str(err.value)
    assert "127.0.0.1" in text and "FAKE_API_KEY" in text and "401" in text
    assert "sk-wrong" not in text and KEY not in text
    assert len(fake.chat_requests()) == 1  # a refused key is not retried


def test_a_missing_key_is_an_error_before_any_request(fake, monkeypatch):
    monkeypatch.delenv("FAKE_API_KEY")
    with pytest.raises(XuetuError, match="FAKE_API_KEY is not set"):
        _engine(fake)
    assert fake.requests == []


def test_an_unknown_model_says_to_check_the_api_model(fake):
    with pytest.raises(UpstreamError, match="no model 'nope'.*does not exist"):
        _run(_engine(fake, "nope"), [{"role": "user", "content": "hi"}])


def test_an_unreachable_provider_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", KEY)
    ref = create_remote("gone:v1", url=f"http://127.0.0.1:{free_port()}/v1", api_model="x",
                        key_env="FAKE_API_KEY", retries=1)
    with pytest.raises(UpstreamError, match="cannot reach 127.0.0.1"):
        _run(engines.load(ref), [{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("model,why", [("malformed", "malformed chunk"), ("cut", "without finishing")])
def test_a_broken_stream_ends_with_an_error_after_what_arrived(fake, model, why):
    got = []
    with pytest.raises(UpstreamError, match=why):
        for chunk in _engine(fake, model).generate([{"role": "user", "content": "hi"}]):
            got.append(chunk.text)
    assert got == ["You "]
    assert len(fake.chat_requests()) == 1  # never retried once text has streamed


def test_cancelling_closes_the_upstream_connection(fake):
    engine = _engine(fake, "slow")
    cancelled = threading.Event()
    stream = engine.generate([{"role": "user", "content": "go"}], GenerateOptions(), cancelled=cancelled)
    assert next(stream).text == "w0 "
    start = time.perf_counter()
    threading.Timer(0.3, cancelled.set).start()
    rest = list(stream)  # blocked reading; the cancel closes the socket under it
    assert time.perf_counter() - start < 3 and len(rest) < 10
    deadline = time.time() + 5
    while fake.disconnects == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert fake.disconnects == 1  # the provider saw the hang-up long before its 60 words


def test_a_rejected_request_is_bad_input_with_the_providers_reason(fake):
    fake.fail["echo"] = [400]
    with pytest.raises(BadInput, match="rejected the request.*fake 400"):
        _run(_engine(fake), [{"role": "user", "content": "hi"}])


def test_no_local_engine_or_precision_applies(fake):
    ref = create_remote("fake:x", url=fake.url, api_model="echo", key_env="FAKE_API_KEY")
    for kwargs in ({"engine": "transformers"}, {"quant": "int8"}):
        with pytest.raises(XuetuError, match="remote model"):
            engines.load(ref, **kwargs)


def test_a_provider_that_does_not_answer_times_out_with_a_clear_error(fake):
    fake.hang_seconds = 3
    start = time.perf_counter()
    with pytest.raises(UpstreamError, match=r"did not answer within 0.5 s") as err:
        _run(_engine(fake, "hang", timeout=0.5, retries=1), [{"role": "user", "content": "hi"}])
    assert time.perf_counter() - start < 2.5 and "--timeout" in err.value.hint
    assert len(fake.chat_requests()) == 2  # tried again once


def test_an_older_server_without_stream_options_still_answers(fake):
    fake.reject_stream_options = True
    chunks = _run(_engine(fake), [{"role": "user", "content": "old server"}])
    assert "".join(c.text for c in chunks) == "You said: old server "
    assert chunks[-1].completion_tokens == 4 and chunks[-1].prompt_tokens != 11  # no usage: counted here
    assert "stream_options" not in fake.chat_requests()[-1]["body"]
