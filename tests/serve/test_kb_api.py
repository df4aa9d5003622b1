"""Knowledge bases through a live `xuetu serve`: the /v1/kb routes, and chat answers that carry
citations (the `kb` field with the openai client, the MODEL@KB alias with the ollama client)."""

from __future__ import annotations

import json

import httpx
import pytest

from serve.conftest import KEY

LORA = ("# LoRA\n\nLoRA trains two small low-rank matrices beside each frozen weight matrix, so fine-tuning "
        "needs far less memory. The rank r is usually 8 or 16.\n")
QUANT = "# 量化\n\n量化把模型权重从 32 位浮点数压缩成 8 位或 4 位整数，模型占用的内存更少，推理更快。\n"
ASK = [{"role": "user", "content": "What does LoRA train?"}]


@pytest.fixture(scope="module")
def api(server):
    c = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
    r = c.post("/v1/kb", json={"name": "apikb"})
    assert r.status_code == 201, r.text
    for name, text in (("lora.md", LORA), ("量化.md", QUANT)):
        r = c.put(f"/v1/kb/apikb/documents/{name}", content=text.encode())
        assert r.status_code == 200 and r.json()["added"] == [name], r.text
    yield c
    c.delete("/v1/kb/apikb")
    c.close()


def test_manage(api, server):
    assert "apikb" in [k["name"] for k in api.get("/v1/kb").json()["data"]]
    detail = api.get("/v1/kb/apikb").json()
    assert detail["documents"] == 2 and {d["source"] for d in detail["documents_list"]} == {"lora.md", "量化.md"}
    again = api.put("/v1/kb/apikb/documents/lora.md", content=LORA.encode()).json()
    assert again["unchanged"] == ["lora.md"]
    bad = api.put("/v1/kb/apikb/documents/blob.txt", content=bytes(range(256)) * 4).json()
    assert bad["skipped"][0]["source"] == "blob.txt" and bad["skipped"][0]["reason"]
    chunks = api.get("/v1/kb/apikb/documents/lora.md/chunks").json()["data"]
    assert chunks and chunks[0]["heading"] == "LoRA" and "low-rank" in chunks[0]["text"]
    hits = api.post("/v1/kb/apikb/query", json={"query": "模型量化能节省内存吗", "k": 1}).json()["data"]
    assert hits[0]["source"] == "量化.md"
    assert api.post("/v1/kb/apikb/query", json={"query": "", "k": 1}).status_code == 400
    assert api.post("/v1/kb", json={"name": "apikb"}).status_code == 409
    missing = api.get("/v1/kb/nope")
    assert missing.status_code == 404 and "no knowledge base named 'nope'" in missing.json()["error"]["message"]
    assert httpx.get(server.url + "/v1/kb").status_code == 401  # the same auth as every other route


def test_upload_limit_and_names(api):
    assert api.put("/v1/kb/apikb/documents/.hidden", content=b"x").status_code == 400
    assert api.put("/v1/kb/nope/documents/a.txt", content=b"hello").status_code == 404


def test_chat_with_kb_cites_sources(api, openai_client):
    r = openai_client.chat.completions.create(model="smollm2:135m", messages=ASK, temperature=0, max_tokens=60,
                                              extra_body={"kb": "apikb"})
    cites = r.model_extra["citations"]
    assert cites and cites[0]["source"] == "lora.md" and "low-rank" in cites[0]["text"]
    assert {"n", "cited", "source", "page", "heading", "text"} <= set(cites[0])

    stream = openai_client.chat.completions.create(model="smollm2:135m@apikb", messages=ASK, temperature=0,
                                                   max_tokens=30, stream=True)
    finals = [c for c in stream if c.choices and c.choices[0].finish_reason]
    assert finals[0].model_extra["citations"][0]["source"] == "lora.md"


def test_ollama_chat_with_kb(api, ollama_client):
    r = api.post("/api/chat", json={"model": "smollm2:135m", "kb": "apikb", "stream": False, "messages": ASK,
                                    "options": {"temperature": 0, "num_predict": 30}}).json()
    assert r["citations"][0]["source"] == "lora.md" and r["done"] is True
    parts = list(ollama_client.chat(model="smollm2:135m@apikb", messages=ASK, stream=True,
                                    options={"temperature": 0, "num_predict": 20}))
    assert parts[-1].done and "".join(p.message.content for p in parts).strip()  # the SDK drops extra fields...
    with api.stream("POST", "/api/chat", json={"model": "smollm2:135m@apikb", "messages": ASK,
                                               "options": {"temperature": 0, "num_predict": 20}}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[-1]["done"] and lines[-1]["citations"][0]["source"] == "lora.md"  # ...the final line has them
    assert all("citations" not in line for line in lines[:-1])
    unknown = api.post("/api/chat", json={"model": "smollm2:135m", "kb": "nope", "messages": ASK})
    assert unknown.status_code == 404 and "no knowledge base named 'nope'" in unknown.json()["error"]
