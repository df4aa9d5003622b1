"""Distil a teacher into a student: the student learns the teacher's answers, its distributions, or both.

    xuetu distill --teacher smollm2:135m --student tiny --data prompts.jsonl --out tiny-distill
    xuetu distill --teacher-url http://127.0.0.1:11434/v1 --teacher qwen2.5:7b --student smollm2:135m --data prompts.jsonl --cot
    xuetu distill --teacher tutor --student tiny --data qa.jsonl --mode logits --set kd.alpha=0.5 --set kd.top_k=32

setup (student, teacher, run folder) -> sequence level: the teacher answers every prompt (teacher.jsonl,
cached and resumable) and the answers become the training data -> logit level: a DistillLoss holding the
teacher (or its cached top-k) -> resume, fit, save: the fine-tune recipe (train/finetune.py) -> a new model
in the store.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from xuetu import engines, models
from xuetu.notify import note
from xuetu.errors import ModelNotFound, XuetuError
from xuetu.models.names import parse_name
from xuetu.train import loop, methods
from xuetu.train.answer_cache import AnswerCache, answer_prompts
from xuetu.train.args import DistillArgs
from xuetu.train.finetune import Result, finetune
from xuetu.train.kd_loss import DistillLoss, check_same_vocab, example_key, teacher_top_k
from xuetu.train.runs import Run, run_dir
from xuetu.train.teacher import LocalTeacher, open_teacher, read_prompts


def _resolve(name: str, role: str):
    try:
        return models.resolve(name)
    except ModelNotFound as e:
        raise XuetuError(f"{role} model {name!r} not found", e.hint) from None


def _tokenizer(ref):
    from transformers import AutoTokenizer

    if ref.adapter_dir is not None and (ref.adapter_dir / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(ref.adapter_dir)
    hf_dir = _resolve(ref.base, "base").hf_dir if ref.base else ref.hf_dir
    if hf_dir is None:
        raise XuetuError(f"{ref.name} has only a GGUF file: its logits cannot be computed here",
                         "Pull the Hugging Face version of the model, or use --mode sequence.")
    return AutoTokenizer.from_pretrained(hf_dir)


def _teacher_model(engine):
    """The teacher's torch model from its engine, LoRA merged in (prompt learning has no plain forward)."""
    if engine.ref.prompt_learning:
        raise XuetuError(f"{engine.ref.name} is a prompt- or prefix-tuned adapter: its logits need its own forward",
                         "Use --mode sequence with this teacher.")
    model = engine.model
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def _top_k_factory(args: DistillArgs, run: Run, teacher_name: str, load_teacher):
    """The loss factory for kd.top_k: the teacher's top-k, cached in the run folder, computed for what is missing."""
    k = args.kd.top_k
    path = run.path / f"teacher-top{k}.pt"

    def build(model, packed, examples):
        saved = torch.load(path, weights_only=True) if path.is_file() else {}
        cached = saved.get("examples", {}) if saved.get("teacher") == teacher_name else {}
        missing = [e for e in examples if example_key(e.input_ids) not in cached]
        if missing:
            teacher, pad = load_teacher()
            cached.update(teacher_top_k(teacher, missing, k, pad, progress=True))
            torch.save({"teacher": teacher_name, "k": k, "examples": cached}, path)
            del teacher  # the teacher is not needed while the student trains
        return DistillLoss(model, args.kd.alpha, args.kd.temperature, top_k=cached)

    return build


def distill(args: DistillArgs, resume: bool = True, progress: bool = True) -> Result:
    # -- set up: student, teacher, run folder ---------------------------------------------------------
    if not args.student:
        raise XuetuError("no student: pass --student NAME (a model in the store)")
    if not args.data:
        raise XuetuError("no data: pass --data prompts.jsonl")
    if not Path(args.data).exists():
        raise XuetuError(f"{args.data} does not exist", "Give a JSONL file of prompts, one {\"prompt\": \"...\"} a line.")
    logits = args.mode in ("logits", "both") and args.kd.alpha < 1
    if args.mode != "sequence" and args.teacher_url:
        raise XuetuError(f"--mode {args.mode} needs the teacher's logits, which an OpenAI-compatible endpoint "
                         "does not give", "Use a local --teacher (a model in the store), or --mode sequence.")
    if logits and methods.get(args.method).PROMPT_LEARNING:
        plain = [m for m in methods.names() if not methods.get(m).PROMPT_LEARNING]
        raise XuetuError(f"--mode {args.mode} trains with --method {', '.join(plain[:-1])} or {plain[-1]}, "
                         f"not {args.method}")
    student = _resolve(args.student, "student")
    teacher_ref = None if args.teacher_url else _resolve(args.teacher, "teacher") if args.teacher else None
    if teacher_ref is None and not args.teacher_url:
        raise XuetuError("no teacher: pass --teacher NAME (a model in the store) or --teacher-url URL")
    if args.mode != "sequence" and teacher_ref is not None and teacher_ref.remote is not None:
        raise XuetuError(f"--mode {args.mode} needs the teacher's logits, which the remote model {teacher_ref.name} "
                         f"({teacher_ref.remote.label}) does not give", "Use --mode sequence with it.")
    out = str(parse_name(args.out or f"{student.name.split(':')[0].split('/')[-1]}-distill"))
    run = Run(run_dir(out))
    loop.refuse_if_trained(run, out)
    if logits:
        check_same_vocab(_tokenizer(teacher_ref), _tokenizer(student), teacher_ref.name, student.name)
    info = {"teacher": teacher_ref.name if teacher_ref else args.teacher, "teacher_url": args.teacher_url,
            "distill": {"mode": args.mode, "cot": args.cot, "kd": vars(args.kd)}}
    # -- sequence level: the teacher's answers become the data ----------------------------------------
    data, engine = args.data, None
    if args.mode in ("sequence", "both"):
        data, engine = _teacher_answers(args, run, info, progress)
    # -- logit level: the loss that holds the teacher -------------------------------------------------
    build_loss = None
    if logits:
        build_loss = _logit_loss(args, run, teacher_ref, engine)
    elif engine is not None:
        engine.close()  # sequence mode: the student trains alone
    engine = None  # from here only the loss factory holds the teacher, so a freed teacher is really freed
    # -- resume, fit, save (the fine-tune recipe) -----------------------------------------------------
    train = args.train_args(model=student.name, data=data, out=out)
    return finetune(train, resume=resume, progress=progress, build_loss=build_loss, kind="distill", run_info=info)


def _teacher_answers(args: DistillArgs, run: Run, info: dict, progress: bool):
    """The teacher answers every prompt (teacher.jsonl: cached and resumable); the answers are written as the
    training data. Its path, and the teacher's engine when it is a local model (for the logit level)."""
    prompts = read_prompts(args.data)
    teacher = open_teacher(args.teacher, args.teacher_url, args.teacher_key, args.timeout)
    cache = AnswerCache(run.path / "teacher.jsonl")
    stats = answer_prompts(prompts, teacher, cache, args.cot, args.max_new_tokens, args.teacher_temperature,
                           progress=progress)
    rows = cache.dataset(prompts, stats.keys)
    if not rows:
        raise XuetuError(f"the teacher {teacher.name} answered none of the {len(prompts)} prompts",
                         "Check the teacher with `xuetu run` (or its server), or raise --set max_new_tokens=….")
    dataset = run.path / "distilled.jsonl"
    dataset.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    info["teacher"] = teacher.name
    info["distill"].update(prompts=len(prompts), asked=stats.asked, cached=stats.cached, empty=stats.empty,
                           dataset=str(dataset))
    note(f"the teacher answered {len(rows)} of {len(prompts)} prompts ({stats.asked} now, {stats.cached} cached)")
    return str(dataset), teacher.engine if isinstance(teacher, LocalTeacher) and not teacher.remote else None


def _logit_loss(args: DistillArgs, run: Run, teacher_ref, engine):
    """The fine-tune recipe's loss factory: a DistillLoss holding the teacher (or its cached top-k)."""
    held = [engine] if engine is not None else []  # handed over once, so a freed teacher is really freed

    def load_teacher():
        eng = held.pop() if held else engines.load(teacher_ref, engine="transformers")
        return _teacher_model(eng), eng.tokenizer.pad_token_id or 0

    if args.kd.top_k:
        return _top_k_factory(args, run, teacher_ref.name, load_teacher)

    def build_loss(model, packed, examples):
        return DistillLoss(model, args.kd.alpha, args.kd.temperature, teacher=load_teacher()[0])

    return build_loss
