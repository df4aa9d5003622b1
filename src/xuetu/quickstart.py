"""`xuetu quickstart`: the seeds' whole path on a laptop, with the bundled "AI learning assistant".

    clean the Q&A data -> LoRA fine-tune the embedded model -> base against tuned on held-out questions
    -> a knowledge base from the example's documents -> (the CLI then serves it all with the web app)

Every stage writes its artefact under XUETU_HOME/quickstart/ or the usual places (runs/, models/, kb/),
and a second run reuses what the first one finished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.notify import say
from xuetu.errors import XuetuError
from xuetu.home import xuetu_home

HELD_OUT_EVERY = 5
"""Every fifth question is held out: 8 of the example's 40, half English and half Chinese."""


@dataclass
class QuickstartArgs:
    example: str = "ai_tutor"
    model: str = "smollm2:135m"
    out: str = "ai-tutor:latest"
    """The fine-tuned model's name in the store."""
    kb: str = "ai-tutor"
    minutes: float = 8.0
    """Time budget for training; it stops (and saves) when the budget is spent."""
    steps: int = 60
    """Optimizer steps of LoRA training."""
    fresh: bool = False
    """Train again even when an earlier quickstart left a tuned model."""
    progress: bool = True


@dataclass
class QuickstartResult:
    work: Path
    cleaned: Path
    train_data: Path
    held_out: Path
    model: str
    run: Path
    curves: Path
    report: Path
    scores: dict = field(default_factory=dict)
    """{"base": {...}, "tuned": {...}}: perplexity, rouge_l, bleu on the held-out questions."""
    kb: str = ""
    kb_chunks: int = 0
    trained: bool = True
    """False when an earlier run's model was reused."""


def _say(args: QuickstartArgs, text: str) -> None:
    if args.progress:
        say(text)


def split_held_out(cleaned: Path, train: Path, held_out: Path) -> tuple[int, int]:
    lines = [line for line in cleaned.read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = [line for i, line in enumerate(lines) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    hold = [line for i, line in enumerate(lines) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    train.write_text("\n".join(keep) + "\n", encoding="utf-8")
    held_out.write_text("\n".join(hold) + "\n", encoding="utf-8")
    return len(keep), len(hold)


def _tuned_exists(name: str) -> bool:
    from xuetu import models
    from xuetu.train.runs import run_dir

    info_path = run_dir(name) / "run.json"
    if not info_path.is_file():
        return False
    info = json.loads(info_path.read_text(encoding="utf-8"))
    return info.get("status") == "finished" and any(r.name == name for r in models.list_models())


def _forget_tuned(name: str) -> None:
    import shutil

    from xuetu import models
    from xuetu.models import store
    from xuetu.train.runs import run_dir

    if any(r.name == name for r in models.list_models()):
        store.remove(name)
    shutil.rmtree(run_dir(name), ignore_errors=True)


def build_kb(args: QuickstartArgs, docs: Path) -> int:
    from xuetu.rag import ingest, kb

    base = kb.open_kb(args.kb) if args.kb in kb.list_names() else kb.create(args.kb)
    try:
        files = sorted(p for p in docs.iterdir() if p.is_file())
        ingest.add(base, files, progress=args.progress, names=[p.name for p in files])  # cited as "lora.md"
        return sum(d["chunks"] for d in base.documents.values())
    finally:
        base.close()


def run(args: QuickstartArgs | None = None) -> QuickstartResult:
    from xuetu import models
    from xuetu.data import CleanArgs, clean
    from xuetu.examples import example_path
    from xuetu.models import parse_name
    from xuetu.train.args import TrainArgs
    from xuetu.train.finetune import finetune
    from xuetu.train.runs import run_dir

    args = args or QuickstartArgs()
    if args.steps < 1 or args.minutes <= 0:
        raise XuetuError("--steps and --minutes must be positive")
    example = example_path(args.example)
    out = str(parse_name(args.out))
    work = xuetu_home() / "quickstart"
    work.mkdir(parents=True, exist_ok=True)

    _say(args, f"\n[1/4] cleaning the example's questions and answers ({example.name}/qa.jsonl)")
    cleaned = work / "qa.clean.jsonl"
    summary = clean(example / "qa.jsonl", cleaned, CleanArgs(pii=True), progress=False)
    train_data, held_out = work / "train.jsonl", work / "held-out.jsonl"
    n_train, n_held = split_held_out(cleaned, train_data, held_out)
    _say(args, f"      read {summary.input}, kept {summary.kept}, rejected {summary.rejected_total}: "
               f"{n_train} to train on, {n_held} held out for the evaluation\n      {cleaned}")

    models.resolve(args.model, pull_missing=True, progress=args.progress)
    trained = True
    if args.fresh:
        _forget_tuned(out)
    if _tuned_exists(out):
        trained = False
        _say(args, f"\n[2/4] {out} was trained by an earlier quickstart: reusing it (--fresh trains again)")
    else:
        _say(args, f"\n[2/4] LoRA fine-tuning {args.model} for {args.steps} steps (at most {args.minutes:g} minutes)")
        train_args = TrainArgs(model=args.model, data=str(train_data), val_data=str(held_out), method="lora",
                               out=out, max_steps=args.steps, max_minutes=args.minutes, eval_examples=n_held,
                               save_every=max(10, args.steps // 3))
        finetune(train_args, progress=args.progress)
    run_path = run_dir(out)
    report_json = run_path / "report.json"
    if not report_json.is_file():
        raise XuetuError(f"training finished but left no evaluation in {run_path}", "Run the quickstart with --fresh.")
    scores = {k: {m: v for m, v in row.items() if m != "answers"}
              for k, row in json.loads(report_json.read_text(encoding="utf-8")).items()}
    _say(args, "\n[3/4] base against tuned on the held-out questions\n" + format_scores(scores)
         + f"\n      report: {run_path / 'report.md'}\n      loss curves: {run_path / 'curves.png'}")

    _say(args, f"\n[4/4] knowledge base '{args.kb}' from {example.name}/docs")
    chunks = build_kb(args, example / "docs")
    _say(args, f"      {chunks} chunks ready")
    return QuickstartResult(work=work, cleaned=cleaned, train_data=train_data, held_out=held_out, model=out,
                            run=run_path, curves=run_path / "curves.png", report=run_path / "report.md",
                            scores=scores, kb=args.kb, kb_chunks=chunks, trained=trained)


def format_scores(scores: dict) -> str:
    lines = [f"      {'':<8}{'perplexity ↓':>14}{'ROUGE-L ↑':>12}{'BLEU ↑':>9}"]
    for label in ("base", "tuned"):
        if label in scores:
            s = scores[label]
            lines.append(f"      {label:<8}{s['perplexity']:>14.2f}{s['rouge_l']:>12.3f}{s['bleu']:>9.1f}")
    return "\n".join(lines)
