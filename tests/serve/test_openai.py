"""The official `openai` client against a live `xuetu serve`."""

import base64
import json

import numpy as np
import openai
import pytest

MSG = [{"role": "user", "content": "Name the capital of France."}]  # greedy answer: "The capital of France is Paris."


def test_models(openai_client):
    ids = [m.id for m in openai_client.models.list().data]
    assert {"smollm2:135m", "tiny:latest", "tiny-lora:a", "all-minilm:l6-v2"} <= set(ids)
    assert openai_client.models.retrieve("smollm2:135m").id == "smollm2:135m"
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("nope:1")


def test_chat_non_streaming(openai_client):
    r = openai_client.chat.completions.create(model="smollm2:135m", messages=MSG, temperature=0)
    assert "Paris" in r.choices[0].message.content
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.usage.prompt_tokens == 36 and r.usage.completion_tokens > 3
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_streaming_with_usage(openai_client):
    stream = openai_client.chat.completions.create(model="smollm2:135m", messages=MSG, temperature=0, stream=True,
                                                   stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    full = openai_client.chat.completions.create(model="smollm2:135m", messages=MSG, temperature=0)
    assert text == full.choices[0].message.content


def test_finish_reason_length(openai_client):
    r = openai_client.chat.completions.create(model="smollm2:135m", messages=MSG, max_completion_tokens=3)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3


def test_stop_and_seed(openai_client):
    kw = dict(model="smollm2:135m", messages=[{"role": "user", "content": "Tell me a story."}], temperature=1.0,
              max_tokens=20)
    a = openai_client.chat.completions.create(seed=42, **kw).choices[0].message.content
    b = openai_client.chat.completions.create(seed=42, **kw).choices[0].message.content
    assert a == b
    word = a.split()[2]
    cut = openai_client.chat.completions.create(seed=42, stop=[word], **kw)
    assert word not in cut.choices[0].message.content and cut.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", ["smollm2:135m", "tiny:latest"])
def test_json_mode(openai_client, model):
    r = openai_client.chat.completions.create(
        model=model, temperature=0, max_tokens=60, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Describe Paris as JSON with keys city and country."}])
    text = r.choices[0].message.content
    assert isinstance(json.loads(text), dict), text


def test_json_schema(openai_client):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    r = openai_client.chat.completions.create(
        model="smollm2:135m", temperature=0, max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        messages=[{"role": "user", "content": "Describe Paris."}])
    data = json.loads(r.choices[0].message.content)
    assert set(data) == {"city", "population"} and isinstance(data["population"], int)


def test_completions(openai_client):
    r = openai_client.completions.create(model="smollm2:135m", prompt="The capital of France is", max_tokens=8,
                                         temperature=0)
    assert r.object == "text_completion" and r.choices[0].text.strip()
    parts = list(openai_client.completions.create(model="smollm2:135m", prompt="The capital of France is",
                                                  max_tokens=8, temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts) == r.choices[0].text
    assert parts[-1].choices[0].finish_reason in ("stop", "length")


def test_embeddings(openai_client):
    r = openai_client.embeddings.create(model="all-minilm", input=["The cat sits.", "A cat is sitting.", "Stocks fell."])
    vecs = np.array([d.embedding for d in r.data])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert r.usage.prompt_tokens > 0


def test_embeddings_float_and_base64_agree(server):
    with server.client() as c:
        f = c.post("/v1/embeddings", json={"model": "all-minilm", "input": "你好"}).json()
        b = c.post("/v1/embeddings", json={"model": "all-minilm", "input": "你好", "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(b["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, f["data"][0]["embedding"], atol=1e-6)


def test_adapters_by_name(openai_client, serve_home, monkeypatch):
    kw = dict(messages=[{"role": "user", "content": "hello"}], temperature=0, max_tokens=12,
              extra_body={"repeat_penalty": 1.0})
    outs = {m: openai_client.chat.completions.create(model=m, **kw).choices[0].message.content
            for m in ("tiny:latest", "tiny-lora:a", "tiny-lora:b")}
    assert len(set(outs.values())) == 3, outs
    # the server's shared-base answer equals a standalone engine loading that adapter alone
    from xuetu import engines
    from xuetu.engines.base import GenerateOptions

    monkeypatch.setenv("XUETU_HOME", str(serve_home))
    alone = engines.load("tiny-lora:b", engine="transformers")
    opts = GenerateOptions(temperature=0, max_tokens=12, repeat_penalty=1.0)
    assert "".join(c.text for c in alone.generate(kw["messages"], opts)) == outs["tiny-lora:b"]


@pytest.mark.parametrize("payload, status, code", [
    ({"model": "smollm2:135m", "messages": []}, 400, "invalid_request"),
    ({"model": "smollm2:135m", "messages": [{"role": "wizard", "content": "x"}]}, 400, "invalid_request"),
    ({"model": "smollm2:135m", "messages": MSG, "temperature": "hot"}, 400, "invalid_request"),
    ({"model": "smollm2:135m", "messages": MSG, "temperature": 9}, 400, "invalid_request"),
    ({"model": "smollm2:135m", "messages": MSG, "n": 2}, 400, "invalid_request"),
    ({"model": "smollm2:135m", "messages": MSG, "max_tokens": 0}, 400, "invalid_request"),
    ({"messages": MSG}, 400, "invalid_request"),
    ({"model": "no-such:model", "messages": MSG}, 404, "model_not_found"),
    ({"model": "../../etc/passwd", "messages": MSG}, 400, "invalid_request"),
    ({"model": "smollm2:135m", "messages": [{"role": "user", "content": "word " * 9000}]}, 400,
     "context_length_exceeded"),
    ({"model": "all-minilm", "messages": MSG}, 400, "invalid_request"),
])
def test_errors_have_openai_shape(server, payload, status, code):
    with server.client() as c:
        r = c.post("/v1/chat/completions", json=payload)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code and err["message"]


def test_malformed_json_and_huge_body(server):
    with server.client() as c:
        r = c.post("/v1/chat/completions", content=b'{"model": "smollm2:135m", "messages": [',
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        r = c.post("/v1/chat/completions", content=b"x" * (9 * 1024 * 1024), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_sdk_raises_typed_errors(openai_client):
    with pytest.raises(openai.BadRequestError):
        openai_client.chat.completions.create(model="smollm2:135m", messages=MSG, n=3)
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="gpt-5", messages=MSG)


def test_embedded_models_need_no_pull_and_others_say_pull(tmp_path):
    """On a new store the embedded embedder answers at once; a known model that is not pulled says to pull
    it, in Ollama's words, instead of suggesting its own name."""
    from helpers.server import ServerProcess

    s = ServerProcess(tmp_path).wait()
    try:
        with s.client() as c:
            r = c.post("/v1/embeddings", json={"model": "all-minilm:l6-v2", "input": "你好"})
            assert r.status_code == 200, r.text
            assert len(r.json()["data"][0]["embedding"]) == 384
            r = c.post("/api/chat", json={"model": "qwen2.5:0.5b", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 404
            assert "not found, try pulling it first" in r.json()["error"]
            assert "Did you mean" not in r.json()["error"]
            r = c.post("/v1/chat/completions", json={"model": "smolm2:135m", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 404 and "Did you mean smollm2:135m" in r.json()["error"]["message"]
    finally:
        s.stop()
