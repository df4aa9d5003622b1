"""Add documents to a knowledge base: load, chunk, embed and index them, one document at a time.

Each document is all or nothing. Its chunk file is written first, then its vectors, and only then
does the manifest name it (the commit point); its old version's chunks go after that. Small files are
embedded and stored in batches and committed together. An interrupted
run leaves orphans that queries ignore and the next write removes; running it again completes the job.
Unchanged files (same content hash) are skipped; bad files are reported with a reason and skipped.
"""

from __future__ import annotations

import glob
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from xuetu.errors import XuetuError
from xuetu.home import atomic_write_text
from xuetu.rag.document import LoadError
from xuetu.rag.kb import KnowledgeBase, chunk_key, content_hash


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(file, reason) for every file that could not be ingested."""
    chunks: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
                f"{len(self.skipped)} skipped; {self.chunks} chunks in {self.seconds:.1f} s")


def expand(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """(file, source name) for files, folders (recursively, hidden files left out) and glob patterns.

    A file's source name is its path relative to the current folder when it lies inside it, else the
    path from the named folder (so citations stay short and the same file keeps the same name).
    """
    out: list[tuple[Path, str]] = []
    for given in paths:
        given = str(given)
        matches = sorted(glob.glob(given, recursive=True)) if glob.has_magic(given) else [given]
        if not matches:
            raise XuetuError(f"{given} matches no files")
        for m in matches:
            p = Path(m)
            if not p.exists():
                raise XuetuError(f"{p} does not exist")
            files = [p] if p.is_file() else sorted(
                f for f in p.rglob("*") if f.is_file() and not any(x.startswith(".") for x in f.relative_to(p).parts))
            for f in files:
                out.append((f, source_name(f, p if p.is_dir() else None)))
    seen, unique = set(), []
    for f, s in out:
        if s not in seen:
            seen.add(s)
            unique.append((f, s))
    return unique


def source_name(f: Path, folder: Path | None) -> str:
    try:
        return f.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        if folder is not None:
            return (Path(folder.resolve().name) / f.resolve().relative_to(folder.resolve())).as_posix()
        return f.name


BATCH_CHUNKS = 256
"""Documents are embedded and stored together until this many chunks are waiting: one encoder batch and one
store call for many small files. They are committed together, so each is still all or nothing."""


@dataclass
class Prepared:
    source: str
    size: int
    digest: str
    key: str
    tags: list[str]
    rows: list[dict]
    old: dict | None


def add(kb: KnowledgeBase, paths: list[str | Path], tags: list[str] | None = None, progress: bool = True,
        names: list[str] | None = None) -> AddReport:
    """Ingest files; `names` overrides their source names (uploads keep the uploader's file name)."""
    files = expand(paths) if names is None else [(Path(p), n) for p, n in zip(paths, names)]
    report = AddReport()
    start = time.perf_counter()
    bar = None
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc=f"adding to {kb.name}", unit="file", dynamic_ncols=True)
    pending: list[Prepared] = []
    with kb.writing():
        for f, source in files:
            if bar is not None:
                bar.set_postfix_str(source[-40:], refresh=False)
            try:
                prepared = prepare_document(kb, f, source, tags or [])
            except LoadError as e:
                report.skipped.append((source, e.reason))
            else:
                if prepared is None:
                    report.unchanged.append(source)
                else:
                    pending.append(prepared)
                    if sum(len(p.rows) for p in pending) >= BATCH_CHUNKS:
                        store_documents(kb, pending, report, progress=progress and bar is None)
            if bar is not None:
                bar.update(1)
        store_documents(kb, pending, report, progress=progress and bar is None)
        if report.added or report.updated:
            kb.bm25  # rebuild the keyword index once, now, rather than on the first query
    if bar is not None:
        bar.close()
    report.seconds = time.perf_counter() - start
    return report


def prepare_document(kb: KnowledgeBase, f: Path, source: str, tags: list[str]) -> Prepared | None:
    """Load and chunk one file and write its chunk file; None when it is unchanged. Call inside kb.writing()."""
    from xuetu.rag import loaders
    from xuetu.rag.chunking import chunk_sections

    digest = content_hash(f)
    old = kb.documents.get(source)
    tags = sorted(set(tags)) if tags else (old or {}).get("tags", [])
    if old is not None and old["hash"] == digest and old.get("tags", []) == tags:
        return None
    sections = loaders.load(f)
    s = kb.settings
    chunks = chunk_sections(sections, source, kb.embedder.count_text_tokens, s.chunk_size, s.overlap)
    if not chunks:
        raise LoadError("no text to index")
    key = chunk_key(source, digest)
    rows = []
    for c in chunks:
        meta = {"source": source, "doc_hash": digest[:16], "index": c.index, "start": c.start, "end": c.end}
        if c.page is not None:
            meta["page"] = c.page
        if c.heading:
            meta["heading"] = c.heading
        for k, v in c.meta.items():
            if isinstance(v, (str, int, float, bool)):
                meta.setdefault(k, v)
        meta.update({f"tag:{t}": True for t in tags})
        rows.append({"id": f"{key}:{c.index}", "text": c.text, "metadata": meta})
    # Written before the store sees the vectors: an interrupted run leaves a file naming its orphans.
    atomic_write_text(kb.chunk_file(key), "".join(orjson.dumps(r).decode() + "\n" for r in rows))
    return Prepared(source, f.stat().st_size, digest, key, tags, rows, old)


def store_documents(kb: KnowledgeBase, pending: list[Prepared], report: AddReport, progress: bool = False) -> None:
    """Embed and store the prepared documents, then commit them; empties `pending`."""
    if not pending:
        return
    rows = [r for p in pending for r in p.rows]
    texts = [r["text"] for r in rows]
    vectors, _ = kb.embedder.embed(texts, progress=progress and len(rows) > 64)
    kb.store.add([r["id"] for r in rows], vectors, texts, [r["metadata"] for r in rows])
    for p in pending:
        kb.documents[p.source] = {"hash": p.digest, "key": p.key, "chunks": len(p.rows), "size": p.size,
                                  "added": time.time(), "tags": p.tags}
    kb.commit()  # the documents are in the knowledge base from here on
    for p in pending:
        if p.old is not None and p.old["key"] != p.key:
            _drop_chunks(kb, p.old["key"])
        (report.updated if p.old is not None else report.added).append(p.source)
        report.chunks += len(p.rows)
    pending.clear()


def remove_document(kb: KnowledgeBase, doc: str) -> str:
    with kb.writing():
        source = kb.find_document(doc)
        key = kb.documents.pop(source)["key"]
        kb.commit()
        _drop_chunks(kb, key)
    return source


def _drop_chunks(kb: KnowledgeBase, key: str) -> None:
    f = kb.chunk_file(key)
    if f.is_file():
        ids = [orjson.loads(line)["id"] for line in f.read_bytes().splitlines() if line]
        if ids:
            kb.store.delete(ids)
        f.unlink()
