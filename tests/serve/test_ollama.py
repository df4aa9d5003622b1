"""The official `ollama` client against a live `xuetu serve`."""

import json

import ollama
import pytest

MSG = [{"role": "user", "content": "Name the capital of France."}]  # greedy answer: "The capital of France is Paris."


def test_chat(ollama_client):
    r = ollama_client.chat(model="smollm2:135m", messages=MSG, options={"temperature": 0})
    assert "Paris" in r.message.content and r.message.role == "assistant"
    assert r.done and r.done_reason == "stop"
    assert r.prompt_eval_count == 36 and r.eval_count > 3
    assert r.total_duration >= r.eval_duration > 0  # nanoseconds
    assert r.total_duration > 1_000_000


def test_chat_streaming(ollama_client):
    parts = list(ollama_client.chat(model="smollm2:135m", messages=MSG, options={"temperature": 0}, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert parts[-1].eval_count == len([p for p in parts[:-1]]) or parts[-1].eval_count >= len(parts) - 1
    text = "".join(p.message.content for p in parts)
    assert text == ollama_client.chat(model="smollm2:135m", messages=MSG, options={"temperature": 0}).message.content


def test_generate(ollama_client):
    r = ollama_client.generate(model="smollm2:135m", prompt="Name the capital of France.",
                               options={"temperature": 0, "num_predict": 40})
    assert "Paris" in r.response and r.done
    parts = list(ollama_client.generate(model="smollm2:135m", prompt="Count to five.", stream=True,
                                        options={"num_predict": 5}))
    assert parts[-1].done and parts[-1].done_reason == "length" and parts[-1].eval_count == 5


def test_generate_raw_and_system(ollama_client):
    raw = ollama_client.generate(model="smollm2:135m", prompt="The capital of France is", raw=True,
                                 options={"temperature": 0, "num_predict": 5})
    assert raw.prompt_eval_count < 10  # no chat template around it
    sys = ollama_client.generate(model="smollm2:135m", prompt="Hi", system="You are a pirate.",
                                 options={"temperature": 0, "num_predict": 5})
    assert sys.prompt_eval_count > raw.prompt_eval_count


def test_format_json(ollama_client):
    r = ollama_client.chat(model="smollm2:135m", format="json", options={"temperature": 0, "num_predict": 200},
                           messages=[{"role": "user", "content": "Give a JSON object about Paris."}])
    assert isinstance(json.loads(r.message.content), dict)


def test_tags_show_ps(ollama_client):
    names = [m.model for m in ollama_client.list().models]
    assert {"smollm2:135m", "tiny:latest", "all-minilm:l6-v2"} <= set(names)
    smol = next(m for m in ollama_client.list().models if m.model == "smollm2:135m")
    assert smol.size > 90_000_000 and len(smol.digest) == 64
    assert smol.details.parameter_size == "134.5M" and smol.details.quantization_level == "Q4_1"
    shown = ollama_client.show("smollm2:135m")
    assert "im_start" in shown.template and "temperature" in shown.parameters
    assert shown.modelinfo["general.parameter_count"] == 134_515_008
    ollama_client.generate(model="smollm2:135m", prompt="hi", options={"num_predict": 1})
    loaded = {m.model: m for m in ollama_client.ps().models}
    assert "smollm2:135m" in loaded and loaded["smollm2:135m"].size > 0


def test_embed(ollama_client):
    r = ollama_client.embed(model="all-minilm", input=["hello", "world"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) == 384
    assert r.prompt_eval_count > 0
    legacy = ollama_client.embeddings(model="all-minilm", prompt="hello")
    assert pytest.approx(legacy.embedding, abs=1e-5) == r.embeddings[0]


def test_pull_streams_progress(ollama_client):
    lines = list(ollama_client.pull("all-minilm", stream=True))
    assert lines[0].status == "pulling manifest" and lines[-1].status == "success"
    assert ollama_client.pull("all-minilm").status == "success"
    with pytest.raises(ollama.ResponseError):
        list(ollama_client.pull("no-such-model-anywhere", stream=True))


def test_create_copy_delete(ollama_client):
    ollama_client.create(model="pirate:v1", from_="tiny:latest", system="You are a pirate.",
                         parameters={"temperature": 0.1})
    shown = ollama_client.show("pirate:v1")
    assert "pirate" in shown.modelfile and "0.1" in shown.parameters
    ollama_client.copy("pirate:v1", "pirate:v2")
    names = {m.model for m in ollama_client.list().models}
    assert {"pirate:v1", "pirate:v2"} <= names
    r = ollama_client.chat(model="pirate:v2", messages=[{"role": "user", "content": "hi"}], options={"num_predict": 3})
    assert r.prompt_eval_count > 10  # the stored system prompt was applied
    ollama_client.delete("pirate:v1")
    ollama_client.delete("pirate:v2")
    assert not {"pirate:v1", "pirate:v2"} & {m.model for m in ollama_client.list().models}
    with pytest.raises(ollama.ResponseError) as e:
        ollama_client.delete("pirate:v1")
    assert e.value.status_code == 404


def test_load_and_unload(ollama_client):
    r = ollama_client.generate(model="tiny:latest", prompt="")
    assert r.done_reason == "load"
    assert "tiny:latest" in {m.model for m in ollama_client.ps().models}
    r = ollama_client.generate(model="tiny:latest", prompt="", keep_alive=0)
    assert r.done_reason == "unload"
    assert "tiny:latest" not in {m.model for m in ollama_client.ps().models}


def test_errors(ollama_client, server):
    with pytest.raises(ollama.ResponseError) as e:
        ollama_client.chat(model="nope:1", messages=MSG)
    assert e.value.status_code == 404 and "not found" in e.value.error
    with server.client() as c:
        r = c.post("/api/chat", json={"model": "smollm2:135m", "messages": [{"role": "x"}]})
        assert r.status_code == 400 and set(r.json()) == {"error"}
        r = c.post("/api/generate", content=b"{nope", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["error"]
        r = c.post("/api/chat", json={"model": "smollm2:135m", "messages": MSG, "options": {"temperature": "hot"}})
        assert r.status_code == 400
        assert c.get("/api/version").json()["version"]


def test_pull_from_a_hub_through_the_server(tmp_path, tiny_dir):
    """POST /api/pull downloads with the real downloader and streams Ollama's progress lines."""
    import shutil

    from helpers.fakehub import FakeHub
    from helpers.server import ServerProcess

    root = tmp_path / "hub"
    shutil.copytree(tiny_dir, root / "acme" / "tiny")
    home = tmp_path / "home"
    home.mkdir()
    with FakeHub(root) as hub:
        server = ServerProcess(home, env={"HF_ENDPOINT": hub.url}).wait()
        try:
            client = ollama.Client(host=server.url)
            lines = list(client.pull("acme/tiny", stream=True))
            assert lines[0].status == "pulling manifest" and lines[-1].status == "success"
            sized = [line for line in lines if line.total]
            assert sized and sized[-1].completed == sized[-1].total
            assert any(line.status.startswith("verifying") for line in lines)
            assert "acme/tiny:latest" in {m.model for m in client.list().models}
            r = client.generate(model="acme/tiny", prompt="hi", options={"num_predict": 3})
            assert r.done
        finally:
            server.stop()
