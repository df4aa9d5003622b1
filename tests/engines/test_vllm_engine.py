"""The vLLM engine behind xuetu's API, through the real `openai` client: the check to run wherever vLLM is
installed (a CUDA machine). Everywhere else, which includes CI, every test here is skipped and says why, and
the vLLM engine counts as unverified (docs/deploy.md).

    pip install vllm && .venv/bin/python -m pytest tests/engines/test_vllm_engine.py -p no:cacheprovider
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json

import pytest

from helpers.server import ServerProcess

KEY = "vllm-check-key"


def _why_not() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (pip install vllm on a CUDA machine): the vllm engine is unverified here"
    import torch

    if not torch.cuda.is_available():
        return "vLLM needs a CUDA GPU: the vllm engine is unverified here"
    return None


pytestmark = [pytest.mark.skipif(_why_not() is not None, reason=_why_not() or ""), pytest.mark.slow]


@pytest.fixture(scope="module")
def vllm_server(embedded_home):
    s = ServerProcess(embedded_home, "--engine", "vllm", "--max-batch", "16", key=KEY).wait(timeout=600)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(vllm_server):
    import openai

    return openai.OpenAI(base_url=vllm_server.url + "/v1", api_key=KEY, max_retries=0, timeout=300)


def ask(client, content: str, **kw):
    return client.chat.completions.create(model="smollm2:135m", messages=[{"role": "user", "content": content}],
                                          temperature=0, max_tokens=kw.pop("max_tokens", 32), **kw)


def test_answers_and_reports_vllm_as_its_engine(client, vllm_server):
    reply = ask(client, "What is the capital of France?")
    assert reply.choices[0].message.content.strip() and reply.usage.completion_tokens > 0
    with vllm_server.client() as http:
        ps = http.get("/api/ps").json()["models"]
    assert [m["engine"] for m in ps] == ["vllm"]


def test_streams_the_same_answer_it_gives_whole(client):
    whole = ask(client, "Name three colours.").choices[0].message.content
    pieces = [c.choices[0].delta.content or "" for c in ask(client, "Name three colours.", stream=True)
              if c.choices]
    assert "".join(pieces) == whole


def test_json_format_and_stop_strings(client):
    reply = ask(client, "Give a JSON object with a key name.", max_tokens=64, response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.choices[0].message.content), dict)
    stopped = ask(client, "Count from 1 to 10, separated by commas.", stop=["5"])
    assert "5" not in stopped.choices[0].message.content


def test_a_prompt_longer_than_the_context_is_a_400(client):
    import openai

    with pytest.raises(openai.BadRequestError):
        ask(client, "word " * 20000)


def test_sixteen_streams_at_once_all_answer(client):
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: ask(client, f"Write a sentence about the number {i}."), range(16)))
    assert all(r.choices[0].message.content.strip() for r in replies)
