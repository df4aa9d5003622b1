"""Knowledge bases end to end on the real embedder and real stores: ingestion (incremental, all or
nothing per document, bad files skipped), retrieval in English and Chinese, filters, removal."""

from __future__ import annotations

import json
import shutil

import pytest

from xuetu.errors import XuetuError
from xuetu.rag import ingest, kb, retrieve


def all_store_ids(base) -> int:
    return base.store.count()


def live_chunks(base) -> int:
    return sum(d["chunks"] for d in base.documents.values())


@pytest.mark.parametrize("store", ["chroma", "qdrant"])
def test_incremental_ingestion(kb_home, docs, store):
    base = kb.create("notes", store=store)
    first = ingest.add(base, [docs], progress=False)
    assert sorted(first.added) == sorted(f"docs/{n}" for n in ("lora.md", "rag.txt", "量化.md", "蒸馏.txt"))
    assert first.chunks >= 4 and not first.skipped
    assert all_store_ids(base) == live_chunks(base) == first.chunks

    again = ingest.add(base, [docs], progress=False)
    assert len(again.unchanged) == 4 and again.chunks == 0 and not again.added

    (docs / "rag.txt").write_text("Chunks are embedded with a sentence-transformers model. " * 30, encoding="utf-8")
    changed = ingest.add(base, [docs], progress=False)
    assert len(changed.updated) == 1 and len(changed.unchanged) == 3
    assert all_store_ids(base) == live_chunks(base)  # the old version's chunks are gone
    hits = retrieve.search(base, "sentence-transformers embedding model", k=3)
    assert hits[0].source.endswith("rag.txt") and "sentence-transformers" in hits[0].text
    assert not any("vector store such as Chroma" in h.text for h in retrieve.search(base, "Chroma vector store", k=10))
    base.close()


def test_interrupted_ingestion_is_all_or_nothing(kb_home, docs, monkeypatch):
    base = kb.create("notes")
    real_commit = kb.KnowledgeBase.commit
    calls = {"n": 0}

    def crash_on_second(self):
        calls["n"] += 1
        if calls["n"] == 2:  # the second document's vectors are in the store, the manifest not yet written
            raise KeyboardInterrupt
        real_commit(self)

    monkeypatch.setattr(ingest, "BATCH_CHUNKS", 1)  # one document per commit, as with large files
    monkeypatch.setattr(kb.KnowledgeBase, "commit", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        ingest.add(base, [docs], progress=False)
    monkeypatch.setattr(kb.KnowledgeBase, "commit", real_commit)
    base.close()

    reopened = kb.open_kb("notes")
    assert len(reopened.documents) == 1  # only the committed document counts
    assert reopened.store.count() > live_chunks(reopened)  # the orphan is still there...
    for r in retrieve.search(reopened, "quantisation memory LoRA distillation retrieval", k=20):
        assert r.source in reopened.documents  # ...but no query sees it
    report = ingest.add(reopened, [docs], progress=False)  # running it again completes the job
    assert len(report.added) == 3 and len(report.unchanged) == 1
    assert reopened.store.count() == live_chunks(reopened)
    assert len(list((reopened.path / "chunks").glob("*.jsonl"))) == 4
    reopened.close()


def test_bad_files_are_skipped_with_reasons(kb_home, docs):
    (docs / "empty.txt").write_text("", encoding="utf-8")
    (docs / "data.bin.txt").write_bytes(bytes(range(256)) * 8)
    (docs / "image.xyz").write_bytes(b"\x89PNG\r\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nthis is not a pdf")
    base = kb.create("notes")
    report = ingest.add(base, [docs], progress=False)
    skipped = dict(report.skipped)
    assert len(report.added) == 4 and len(skipped) == 4
    assert all(reason for reason in skipped.values())
    assert any("unknown" in r or "not supported" in r or "type" in r for r in skipped.values())
    assert set(base.documents) == set(report.added)
    base.close()


def test_chinese_question_finds_chinese_passage(kb_home, docs):
    base = kb.create("notes")
    ingest.add(base, [docs], progress=False)
    for mode in ("hybrid", "bm25"):
        top = retrieve.search(base, "量化会让模型占用更少的内存吗？", k=2, mode=mode)
        assert top[0].source.endswith("量化.md"), (mode, top)
    top = retrieve.search(base, "What does LoRA train beside the frozen weights?", k=2)
    assert top[0].source.endswith("lora.md") and top[0].heading
    base.close()


def test_filters_and_tags(kb_home, docs):
    base = kb.create("notes")
    ingest.add(base, [docs / "lora.md", docs / "rag.txt"], tags=["english"], progress=False)
    ingest.add(base, [docs / "量化.md"], tags=["chinese"], progress=False)
    assert {r.source for r in retrieve.search(base, "model memory", k=10, where={"tags": ["chinese"]})} == \
        {s for s in base.documents if s.endswith("量化.md")}
    only = next(s for s in base.documents if s.endswith("rag.txt"))
    for mode in retrieve.MODES:
        assert {r.source for r in retrieve.search(base, "model", k=10, mode=mode, where={"source": [only]})} <= {only}
    base.close()


def test_remove_document_and_kb(kb_home, docs):
    base = kb.create("notes")
    ingest.add(base, [docs], progress=False)
    removed = ingest.remove_document(base, "lora.md")  # a unique file name is enough
    assert removed.endswith("lora.md") and removed not in base.documents
    assert base.store.count() == live_chunks(base)
    assert all(not r.source.endswith("lora.md") for r in retrieve.search(base, "LoRA low-rank adapters", k=10))
    with pytest.raises(XuetuError, match="no document"):
        ingest.remove_document(base, "missing.md")
    base.close()
    kb.remove("notes")
    assert kb.list_names() == [] and not (kb_home / "kb" / "notes").exists()
    with pytest.raises(XuetuError, match="no knowledge base"):
        kb.open_kb("notes")


def test_bad_settings_and_names(kb_home):
    for bad in ("", "../x", "a/b", "-x"):
        with pytest.raises(XuetuError, match="invalid knowledge-base name"):
            kb.create(bad)
    with pytest.raises(XuetuError, match="unknown store"):
        kb.create("x", store="faiss")
    with pytest.raises(XuetuError, match="overlap"):
        kb.create("x", chunk_size=64, overlap=64)
    kb.create("x").close()
    with pytest.raises(XuetuError, match="already exists"):
        kb.create("x")
    base = kb.open_kb("x")
    for q, k in (("", 5), ("ok", 0), ("ok", 101)):
        with pytest.raises(XuetuError):
            retrieve.search(base, q, k=k)
    assert retrieve.search(base, "anything", k=3) == []  # empty knowledge base: no results, no error
    base.close()


def test_cli_verbs(kb_home, docs, monkeypatch):
    from click.testing import CliRunner

    from xuetu.cli import main

    monkeypatch.chdir(docs.parent)

    def cli(*args):
        r = CliRunner().invoke(main, list(args))
        return r

    assert cli("kb", "create", "notes").exit_code == 0
    out = cli("kb", "add", "notes", "docs/*.md", "-q")
    assert out.exit_code == 0 and "2 added" in out.output
    out = cli("kb", "add", "notes", "docs", "-q")
    assert "2 added" in out.output and "2 unchanged" in out.output
    listed = json.loads(cli("kb", "list", "--json").output)
    assert listed[0]["name"] == "notes" and listed[0]["documents"] == 4
    shown = cli("kb", "show", "notes").output
    assert "docs/量化.md" in shown and "all-minilm" in shown
    hits = json.loads(cli("kb", "query", "notes", "什么是知识蒸馏？", "-k", "2", "--json").output)
    assert hits[0]["source"] == "docs/蒸馏.txt"
    out = cli("kb", "rm-doc", "notes", "docs/蒸馏.txt")
    assert out.exit_code == 0 and "removed docs/蒸馏.txt" in out.output
    out = cli("kb", "query", "nope", "x")
    assert out.exit_code == 1 and "no knowledge base named 'nope'" in out.output
    assert cli("kb", "rm", "notes", "-y").exit_code == 0
    assert "no knowledge bases yet" in cli("kb", "list").output


def test_any_hub_embedder_by_name(kb_home, docs, tmp_path, monkeypatch):
    """A sentence-transformers repo id is pulled on first use (here from a local fake of the hub)."""
    from helpers.fakehub import FakeHub
    from xuetu import models

    root = tmp_path / "hubroot"
    shutil.copytree(models.resolve("all-minilm").hf_dir, root / "acme" / "Mini-Embedder")
    with FakeHub(root) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        base = kb.create("hubkb", embedder="acme/Mini-Embedder")
    assert base.settings.embedder == "acme/mini-embedder:latest"
    ingest.add(base, [docs], progress=False)  # offline again: the embedder is in the store now
    assert retrieve.search(base, "What does LoRA train?", k=1)[0].source.endswith("lora.md")
    base.close()
    with pytest.raises(XuetuError):
        kb.create("nope", embedder="smollm2:135m-not-a-model")


def test_hybrid_leaves_out_an_english_only_embedder_for_chinese(kb_home, docs):
    base = kb.create("notes")
    ingest.add(base, [docs], progress=False)
    question = "量化会让模型占用更少的内存吗？"
    assert retrieve.search(base, question, k=4) == retrieve.search(base, question, k=4, mode="bm25")
    english = "What does LoRA train beside the frozen weights?"
    assert retrieve.dense_reads("all-minilm:l6-v2", english) and retrieve.dense_reads("bge-small-zh:v1.5", question)
    assert not retrieve.dense_reads("all-minilm:l6-v2", question)
    base.close()


def test_configured_reranker_reorders_the_fused_results(kb_home, docs, tmp_path):
    """A real (tiny, random) sentence-transformers cross-encoder: the final order is its score order."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from xuetu import models

    tok = AutoTokenizer.from_pretrained(models.resolve("all-minilm").hf_dir)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, num_labels=1)
    folder = tmp_path / "tiny-reranker"
    BertForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    base = kb.create("notes", reranker=str(folder))
    ingest.add(base, [docs], progress=False)
    question = "How much memory does LoRA need?"
    ranked = retrieve.search(base, question, k=6)
    want = CrossEncoder(str(folder)).predict([(question, r.text) for r in ranked])
    assert [round(r.score, 4) for r in ranked] == [round(float(s), 4) for s in want]  # the cross-encoder's scores
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)  # in its order
    base.close()
    with pytest.raises(XuetuError, match="reranker"):  # refused when created, not at the first question
        kb.create("broken", reranker=str(tmp_path / "missing"))
    assert "broken" not in kb.list_names()
