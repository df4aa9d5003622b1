"""Knowledge-base verbs: `xuetu kb create|add|list|show|query|ask|rm|rm-doc`.

    xuetu kb create notes
    xuetu kb add notes docs/ "papers/*.pdf"
    xuetu kb ask notes "What does LoRA change in the model?" --model smollm2:135m
"""

from __future__ import annotations

import json
import time

import click

from xuetu.cli.chat import guard_option, make_guard, policy_option, sampling_options


@click.group(name="kb")
def kb_group():
    """Knowledge bases: your documents, chunked and indexed, for retrieval-augmented answers with citations."""


@kb_group.command()
@click.argument("name")
@click.option("--embedder", default=None, help="Embedding model: sentence-transformers (default all-minilm:l6-v2, offline) or a remote one "
                   "(xuetu create NAME --preset dashscope --embedding).")
@click.option("--store", type=click.Choice(["chroma", "qdrant"]), default="chroma", show_default=True,
              help="Vector store: embedded Chroma, or Qdrant (local folder, or a server with --location).")
@click.option("--location", default=None, help="Qdrant server URL, e.g. http://localhost:6333.")
@click.option("--chunk-size", type=int, default=200, show_default=True, help="Tokens per chunk.")
@click.option("--overlap", type=int, default=32, show_default=True, help="Tokens shared by neighbouring chunks.")
@click.option("--reranker", default=None, help="Cross-encoder model that reorders the results (optional).")
def create(name, embedder, store, location, chunk_size, overlap, reranker):
    """Create an empty knowledge base NAME."""
    from xuetu.rag import kb

    base = kb.create(name, embedder=embedder, store=store, location=location, chunk_size=chunk_size,
                     overlap=overlap, reranker=reranker)
    s = base.settings
    click.echo(f"created knowledge base {name} (embedder {s.embedder}, {s.store}, {s.chunk_size}-token chunks)")
    click.echo(f"add documents with: xuetu kb add {name} PATHS...")


@kb_group.command()
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option("--tag", "tags", multiple=True, help="Tag these documents (repeatable); filter on it at query time.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def add(name, paths, tags, quiet):
    """Add files, folders or glob patterns to NAME. Unchanged files are skipped; changed ones replaced."""
    from xuetu.rag import ingest, kb

    report = ingest.add(kb.open_kb(name), list(paths), tags=list(tags), progress=not quiet)
    for source, reason in report.skipped:
        click.secho(f"skipped {source}: {reason}", fg="yellow", err=True)
    rate = f" ({report.chunks / report.seconds:.0f} chunks/s)" if report.chunks and report.seconds else ""
    click.echo(report.line() + rate)


@kb_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json):
    """List the knowledge bases."""
    from xuetu.rag import kb

    rows = [kb.open_kb(n).summary() for n in kb.list_names()]
    if as_json:
        return click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    if not rows:
        return click.echo("no knowledge bases yet; create one with: xuetu kb create NAME")
    click.echo(f"{'NAME':<24} {'DOCS':>5} {'CHUNKS':>7}  {'STORE':<7} {'EMBEDDER':<22} CREATED")
    for r in rows:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"]))
        click.echo(f"{r['name']:<24} {r['documents']:>5} {r['chunks']:>7}  {r['store']:<7} {r['embedder']:<22} {created}")


@kb_group.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(name, as_json):
    """Show NAME's settings and documents."""
    from xuetu.rag import kb

    base = kb.open_kb(name)
    info = base.summary()
    docs = [{"source": s, **{k: d[k] for k in ("chunks", "size", "hash", "tags")}} for s, d in sorted(base.documents.items())]
    if as_json:
        return click.echo(json.dumps({**info, "documents": docs}, ensure_ascii=False, indent=2))
    for key in ("name", "embedder", "store", "location", "chunk_size", "overlap", "reranker"):
        if info[key] is not None:
            click.echo(f"{key.replace('_', ' '):<12} {info[key]}")
    click.echo(f"{'documents':<12} {info['documents']} ({info['chunks']} chunks, {info['bytes'] / 1e6:.2f} MB)\n")
    for d in docs:
        tags = f"  [{', '.join(d['tags'])}]" if d["tags"] else ""
        click.echo(f"  {d['chunks']:>5} chunks  {d['size'] / 1e3:>9.1f} kB  {d['source']}{tags}")


def _retrieval_options(f):
    for opt in reversed([
        click.option("-k", "k", type=int, default=5, show_default=True, help="How many chunks to retrieve."),
        click.option("--mode", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True,
                     help="Retrieval: vectors and keywords fused, or one of them."),
        click.option("--source", "sources", multiple=True, help="Only these documents (repeatable)."),
        click.option("--tag", "tags", multiple=True, help="Only documents with one of these tags (repeatable)."),
    ]):
        f = opt(f)
    return f


@kb_group.command()
@click.argument("name")
@click.argument("question")
@_retrieval_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def query(name, question, k, mode, sources, tags, as_json):
    """Show the chunks of NAME that best match QUESTION."""
    from xuetu.rag import kb, retrieve

    results = retrieve.search(kb.open_kb(name), question, k=k, mode=mode,
                              where=retrieve.build_filter(list(sources), list(tags)))
    if as_json:
        return click.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
    if not results:
        return click.echo("nothing found")
    for r in results:
        click.secho(f"[{r.rank}] {r.where()}  (score {r.score:.4f})", bold=True)
        click.echo("    " + r.text.replace("\n", "\n    ")[:600] + "\n")


@kb_group.command()
@click.argument("name")
@click.argument("question")
@click.option("--model", "-m", default=None, help="Chat model that answers (default: the embedded smollm2:135m).")
@_retrieval_options
@sampling_options
@click.option("--engine", default="auto", help="auto, transformers or llama.cpp.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer and its sources as JSON.")
@guard_option
@policy_option
def ask(name, question, model, k, mode, sources, tags, temperature, top_p, top_k, max_tokens, seed, stop,
        repeat_penalty, engine, as_json, no_guard, guard_policy):
    """Answer QUESTION from NAME's documents, citing them as [1], [2]."""
    from xuetu.rag import ask as asking
    from xuetu.rag import retrieve

    answer = asking.ask(name, question, model=model, k=k, mode=mode, guard=make_guard(no_guard, guard_policy),
                        where=retrieve.build_filter(list(sources), list(tags)), engine=engine,
                        options=dict(temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_tokens,
                                     seed=seed, stop=list(stop) or None, repeat_penalty=repeat_penalty),
                        on_text=None if as_json else lambda t: click.echo(t, nl=False))
    if as_json:
        return click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    click.echo("\n")
    for event in answer.guard:
        where = f" in {event['source']}" if event.get("source") else ""
        click.secho(f"guard: {event['action']} {', '.join(event['categories'])} ({event['where']}{where})",
                    fg="yellow", err=True)
    if answer.finish_reason == "content_filter" and not answer.citations:
        return
    if not answer.citations:
        return click.echo("(no documents matched; the model answered without sources)")
    click.secho("Sources:" if any(c.cited for c in answer.citations) else "Sources given to the model (none cited):",
                bold=True)
    for c in answer.citations:
        mark = "" if c.cited else "  (not cited)"
        snippet = c.result.text.replace("\n", " ")
        click.echo(f"  [{c.n}] {c.result.where()}{mark}\n      {snippet[:160]}{'…' if len(snippet) > 160 else ''}")


@kb_group.command()
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def rm(name, yes):
    """Delete the knowledge base NAME and everything indexed in it (your files stay)."""
    from xuetu.rag import kb

    kb.open_kb(name)
    if not yes:
        click.confirm(f"delete knowledge base {name}?", abort=True)
    kb.remove(name)
    click.echo(f"deleted {name}")


@kb_group.command(name="rm-doc")
@click.argument("name")
@click.argument("doc")
def rm_doc(name, doc):
    """Remove the document DOC (its name as `kb show` lists it) from NAME."""
    from xuetu.rag import ingest, kb

    source = ingest.remove_document(kb.open_kb(name), doc)
    click.echo(f"removed {source} from {name}")


COMMANDS = [kb_group]
