"""Knowledge bases on a remote embedder (a real HTTP provider, tests/helpers/fakeapi.py): dense retrieval works,
re-ingesting unchanged files calls no API, an edited file sends only its new text, and a knowledge base rebuilt
from scratch is served from the content-hash cache. The test counts the provider's requests."""

from __future__ import annotations

import pytest

from helpers.fakeapi import FakeAPI
from xuetu.models.remote import create_remote
from xuetu.rag import ingest, kb, retrieve

KEY = "sk-embed-test-31415"
DOCS = {"leave.md": "# Leave\n\nEmployees get 27 days of paid leave a year, booked through the portal.\n",
        "pets.md": "# Pets\n\nDogs are allowed in the office on Fridays if they are calm.\n",
        "lunch.md": "# Lunch\n\nThe canteen serves noodles and dumplings from noon until two.\n"}


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("EMB_KEY", KEY)
    with FakeAPI(key=KEY) as api:
        yield api


def _embeddings(fake):
    return [r for r in fake.requests if r["path"].endswith("/embeddings")]


def _folder(tmp_path, docs=DOCS):
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_knowledge_base_on_a_remote_embedder(fake, xuetu_home, tmp_path, request):
    name = f"emb:{request.node.name[-12:].replace('_', '-')}"
    create_remote(name, kind="embedding", url=fake.url, api_model="fake-embed", key_env="EMB_KEY", batch=2)
    base = kb.create("handbook", embedder=name)
    folder = _folder(tmp_path)
    report = ingest.add(base, [folder], progress=False)
    assert sorted(report.added) == [f"docs/{n}" for n in sorted(DOCS)]
    calls = len(_embeddings(fake))
    assert calls >= 2 and all(len(r["body"]["input"]) <= 2 for r in _embeddings(fake))  # the provider's batch size
    assert all(r["auth"] == f"Bearer {KEY}" for r in _embeddings(fake))

    hits = retrieve.search(base, "how many days of paid leave do employees get", k=1, mode="dense")
    assert hits[0].source == "docs/leave.md"

    # re-ingest, nothing changed: no embedding call at all
    sent, calls = fake.embedded_inputs, len(_embeddings(fake))
    report = ingest.add(base, [folder], progress=False)
    assert len(report.unchanged) == len(DOCS)
    assert fake.embedded_inputs == sent and len(_embeddings(fake)) == calls

    # one file edited: only its new text goes out
    _folder(tmp_path, {"pets.md": "# Pets\n\nCats are welcome in the office every day.\n"})
    ingest.add(base, [folder], progress=False)
    assert 0 < fake.embedded_inputs - sent <= 2
    assert retrieve.search(base, "are cats welcome in the office", k=1, mode="dense")[0].source == "docs/pets.md"

    # the knowledge base removed and built again from the same files: the cache answers every text
    base.close()
    kb.remove("handbook")
    sent = fake.embedded_inputs
    rebuilt = kb.create("handbook2", embedder=name)
    ingest.add(rebuilt, [folder], progress=False)
    assert fake.embedded_inputs == sent
    assert retrieve.search(rebuilt, "noodles and dumplings at noon", k=1, mode="dense")[0].source == "docs/lunch.md"


def test_a_rate_limited_embedding_call_is_retried(fake, xuetu_home, request):
    from xuetu.engines.embedder import open_embedder
    from xuetu.models import resolve

    create_remote("emb:retry", kind="embedding", url=fake.url, api_model="fake-embed", key_env="EMB_KEY")
    fake.fail["fake-embed"] = [429]
    fake.retry_after = 0.2
    vectors, _ = open_embedder(resolve("emb:retry")).embed(["hello world", "hello world"])
    assert len(vectors) == 2 and vectors[0] == vectors[1]
    assert len(_embeddings(fake)) == 2 and fake.embedded_inputs == 1  # one retry; a repeated text sent once


def test_a_chat_model_is_not_an_embedder(fake, xuetu_home):
    from xuetu.errors import XuetuError

    create_remote("chat:x", url=fake.url, api_model="echo", key_env="EMB_KEY")
    with pytest.raises(XuetuError, match="not an embedding model"):
        kb.create("nope", embedder="chat:x")


def test_kb_ask_answers_with_a_remote_chat_model(fake, xuetu_home, tmp_path):
    from click.testing import CliRunner

    from xuetu.cli import main

    create_remote("emb:ask", kind="embedding", url=fake.url, api_model="fake-embed", key_env="EMB_KEY")
    create_remote("api:echo", url=fake.url, api_model="echo", key_env="EMB_KEY")
    ingest.add(kb.create("hr", embedder="emb:ask"), [_folder(tmp_path)], progress=False)
    r = CliRunner().invoke(main, ["kb", "ask", "hr", "How many days of paid leave?", "--model", "api:echo"])
    assert r.exit_code == 0, r.output
    assert "You said:" in r.output and "leave.md" in r.output  # the answer, and its source
    sent = fake.chat_requests()[-1]["body"]["messages"]
    assert any("27 days of paid leave" in m["content"] for m in sent)  # the passage went to the provider
