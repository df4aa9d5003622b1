"""One evaluation: a model answers a data file's questions (through a prompt template, a knowledge base or
neither) and the answers are scored; or it is scored on text (perplexity), multiple-choice CSVs, or preference
pairs (how often it finds the chosen answer likelier than the rejected one: evaluate/preference.py).

    spec = EvalSpec(model="smollm2:135m", data="test.jsonl", prompt="role")
    result = evaluate(spec)          # a dict: metrics with intervals, latency, every example

Answers are cached under XUETU_HOME/evals/cache by everything that decides them (the model's manifest,
engine, data bytes, template text, variables, knowledge-base contents, generation options), so an
unchanged re-run, or a comparison that shares a row with an earlier one, returns at once.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError
from xuetu.evaluate import preference, scoring, toolscore
from xuetu.evaluate.examples import Example, file_digest, load_examples, load_texts
from xuetu.evaluate.generate import Generated, Models
from xuetu.home import atomic_write_json, xuetu_home

CACHE_VERSION = 1


@dataclass
class EvalSpec:
    model: str
    data: str
    metrics: list[str] | None = None
    """None: chosen from the data (generation metrics, plus keyword hits and classification when labelled)."""
    prompt: str | None = None
    """A prompt-library template (or .yaml path); each example fills its `question` variable."""
    variables: dict = field(default_factory=dict)
    kb: str | None = None
    """Answer with retrieval from this knowledge base (RAG)."""
    k: int = 3
    judge: str | None = None
    """A local model, or with judge_url any OpenAI-compatible model, scoring answers 1-10."""
    judge_url: str | None = None
    judge_key: str = "unused"
    rubric: str | None = None
    max_tokens: int = 192
    temperature: float = 0.0
    seed: int = 0
    limit: int | None = None
    batch: int = 8
    engine: str = "auto"
    chinese: str = "char"
    """How ROUGE and token F1 split Chinese: "char" (each character) or "jieba" (words)."""
    fresh: bool = False
    """Ignore cached answers (and replace them)."""

    def __post_init__(self):
        if self.metrics is not None:
            self.metrics = scoring.check_metrics(self.metrics)
        if self.chinese not in ("char", "jieba"):
            raise XuetuError(f"chinese must be char or jieba, got {self.chinese!r}")
        for name, ok in (("max_tokens", isinstance(self.max_tokens, int) and 1 <= self.max_tokens <= 8192),
                         ("k", isinstance(self.k, int) and 1 <= self.k <= 50),
                         ("batch", isinstance(self.batch, int) and 1 <= self.batch <= 256),
                         ("limit", self.limit is None or (isinstance(self.limit, int) and self.limit >= 1))):
            if not ok:
                raise XuetuError(f"{name} is out of range: {getattr(self, name)!r}")
        if not Path(self.data).exists():
            raise XuetuError(f"the evaluation data {self.data} does not exist",
                             "Pass a JSONL/JSON/CSV file of questions with reference answers.")


def cache_dir() -> Path:
    return xuetu_home() / "evals" / "cache"


def cache_get(key: str):
    path = cache_dir() / f"{key}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None  # a damaged entry is recomputed


def cache_put(key: str, value) -> None:
    atomic_write_json(cache_dir() / f"{key}.json", value)


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str).encode()).hexdigest()[:32]


def _template_fingerprint(name: str | None):
    if not name:
        return None
    from xuetu.prompts import get

    t = get(name)
    return {"name": t.name, "version": t.version, "system": t.system, "user": t.user}


def build_prompts(examples: list[Example], spec: EvalSpec, engine, default_system: str | None):
    """Chat messages per example, and per example the retrieval time and sources (RAG only)."""
    template = None
    if spec.prompt:
        from xuetu.prompts import get

        template = get(spec.prompt)
        if "question" not in template.variables:
            raise XuetuError(f"the template {template.name} has no `question` variable to put each example in",
                             "Use one that has (see `xuetu prompt list`), or add {{ question }} to yours.")
    kb = None
    if spec.kb:
        from xuetu.rag import kb as kbs
        from xuetu.rag.answer import build_messages
        from xuetu.rag.ask import context_budget
        from xuetu.rag.retrieve import search

        kb = kbs.open_kb(spec.kb)
    prompts, retrieval = [], []
    try:
        for ex in examples:
            if ex.tools or ex.messages[-1]["role"] != "user":  # a tool conversation goes to the model as it is
                system = ex.system or default_system
                prompts.append(([{"role": "system", "content": system}] if system else []) + ex.messages)
                continue
            history, system, user = ex.messages[:-1], ex.system, ex.question
            if template is not None:
                values = {k: v for k, v in {**ex.extra, **spec.variables}.items() if k in template.variables}
                rendered = template.render({**values, "question": ex.question})
                system = next((x["content"] for x in rendered if x["role"] == "system"), system)
                user = rendered[-1]["content"]
            if kb is not None:
                start = time.perf_counter()
                results = search(kb, ex.question, k=spec.k)
                messages, used = build_messages(user, results, engine.count_tokens,
                                                context_budget(engine, spec.max_tokens), system=system or default_system,
                                                history=history)
                retrieval.append({"seconds": time.perf_counter() - start, "sources": [r.where() for r in used]})
            else:
                messages = ([{"role": "system", "content": system}] if system else []) + history + [
                    {"role": "user", "content": user}]
            prompts.append(messages)
    finally:
        if kb is not None:
            kb.close()
    return prompts, retrieval


def _answers(spec: EvalSpec, models: Models, examples: list[Example], progress: bool):
    """(answers, retrieval per example, wall seconds to produce them, engine info, whether they were cached)"""
    from xuetu import models as store
    from xuetu.engines.base import GenerateOptions

    ref = store.resolve(spec.model)
    kb_print = None
    if spec.kb:
        from xuetu.rag import kb as kbs

        base = kbs.open_kb(spec.kb)
        kb_print = base.fingerprint()
        base.close()
    key = cache_key("answers", ref.name, ref.manifest, models.chosen(spec.model), models.quant, file_digest(spec.data),
               spec.limit,
               _template_fingerprint(spec.prompt), spec.variables, spec.kb, kb_print, spec.k,
               spec.max_tokens, spec.temperature, spec.seed)
    cached = None if spec.fresh else cache_get(key)
    if cached is not None and len(cached["answers"]) == len(examples):
        return ([Generated(**a) for a in cached["answers"]], cached["retrieval"], cached.get("wall", 0.0),
                cached.get("engine", {}), True)
    engine = models.engine_for(spec.model)
    prompts, retrieval = build_prompts(examples, spec, engine, ref.system)
    opts = GenerateOptions.build(ref.params, temperature=spec.temperature, max_tokens=spec.max_tokens, seed=spec.seed)
    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=len(prompts), desc=f"answering with {ref.name}", unit="q", disable=not progress) as bar:
        answers = models.answer(spec.model, prompts, opts, on_done=bar.update, tools=[e.tools for e in examples])
    wall = time.perf_counter() - start + sum(r["seconds"] for r in retrieval)
    info = models.info(spec.model)
    cache_put(key, {"model": ref.name, "answers": [a.to_dict() for a in answers], "retrieval": retrieval,
                     "wall": wall, "engine": info})
    return answers, retrieval, wall, info, False


def _judge(spec: EvalSpec, examples: list[Example], answers: list[Generated], progress: bool) -> list[float | None]:
    from tqdm import tqdm

    from xuetu.evaluate import judge

    rubric = spec.rubric or judge.RUBRIC
    key = cache_key("judge", spec.judge, spec.judge_url, rubric, [(e.question, e.reference, a.text)
                                                              for e, a in zip(examples, answers)])
    cached = cache_get(key)
    if cached is not None:
        return cached["scores"]
    ask = judge.api_judge(spec.judge, spec.judge_url, spec.judge_key) if spec.judge_url else judge.engine_judge(spec.judge)
    scores = [judge.pointwise(ask, e.question, a.text, e.reference, rubric)
              for e, a in tqdm(list(zip(examples, answers)), desc=f"judging with {spec.judge}", disable=not progress)]
    cache_put(key, {"scores": scores})
    return scores


def latency(seconds: list[float], tokens: list[int], wall: float, batch: int) -> dict:
    """Per answer (submission to last token, `batch` answers in flight) and for the whole set."""
    if not seconds:
        return {}
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"mean": statistics.fmean(seconds), "p50": statistics.median(seconds), "p95": p95,
            "tokens_per_second": sum(tokens) / sum(seconds) if sum(seconds) else 0.0,
            "wall_seconds": wall, "throughput_tokens_per_second": sum(tokens) / wall if wall else 0.0,
            "concurrency": batch}


def evaluate(spec: EvalSpec, models: Models | None = None, progress: bool = True) -> dict:
    own = models is None
    models = models or Models(spec.engine, spec.batch)
    try:
        return _evaluate(spec, models, progress)
    finally:
        if own:
            models.close()


def _evaluate(spec: EvalSpec, models: Models, progress: bool) -> dict:
    from xuetu import models as store

    ref = store.resolve(spec.model)
    started = time.perf_counter()
    shown = {**asdict(spec), "judge_key": None}  # the report is served over HTTP: never the judge's API key
    result = {"kind": "eval", "model": ref.name, "data": str(spec.data), "spec": shown, "metrics": {},
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    wanted = spec.metrics
    if (wanted and "preference" in wanted) or (not wanted and preference.data_kind(spec.data)):
        _preference(spec, models, result, progress)
        result["seconds"] = time.perf_counter() - started
        return result
    if wanted and set(wanted) <= {"perplexity", "choice"}:
        _special(spec, models, wanted, result, progress)
        result["seconds"] = time.perf_counter() - started
        return result
    examples = load_examples(spec.data, spec.limit)
    wanted = wanted or scoring.default_metrics(examples)
    if spec.judge and "judge" not in wanted:
        wanted = [*wanted, "judge"]
    if "judge" in wanted and not spec.judge:
        raise XuetuError("the judge metric needs a judge model", "Pass --judge MODEL (and --judge-url for a server).")
    answers, retrieval, wall, info, cached = _answers(spec, models, examples, progress)
    texts = [a.text for a in answers]
    per: dict[str, list] = {}
    for metric in wanted:
        if metric in scoring.GENERATION or metric == "classification":
            per[metric] = scoring.per_example(metric, texts, examples, spec.chinese)
            result["metrics"][metric] = scoring.summarise(metric, per[metric], texts, examples)
        elif metric in toolscore.TOOL_METRICS:
            per[metric] = toolscore.per_example(metric, [a.calls or [] for a in answers], examples)
            result["metrics"][metric] = scoring.summarise(metric, per[metric], texts, examples)
    if "judge" in wanted:
        from xuetu.evaluate.stats import bootstrap_ci

        per["judge"] = _judge(spec, examples, answers, progress)
        valid = [s for s in per["judge"] if s is not None]
        ci = bootstrap_ci(valid)
        result["metrics"]["judge"] = {"value": ci.mean, "low": ci.low, "high": ci.high,
                                      "unparsed": len(per["judge"]) - len(valid)}
    _special(spec, models, [w for w in wanted if w in ("perplexity", "choice")], result, progress)
    seconds = [a.seconds + (retrieval[i]["seconds"] if retrieval else 0.0) for i, a in enumerate(answers)]
    result.update(n=len(examples), cached=cached, errors=sum(1 for a in answers if a.error),
                  latency=latency(seconds, [a.completion_tokens for a in answers], wall, info.get("concurrency", 1)),
                  engine=info, seconds=time.perf_counter() - started)
    result["usage"] = {"prompt_tokens": sum(a.prompt_tokens for a in answers),
                       "completion_tokens": sum(a.completion_tokens for a in answers)}
    if (cost := _cost(ref, result["usage"], len(answers))) is not None:
        result["cost"] = cost
    result["examples"] = [{**ex.to_dict(), "answer": a.text, **({"answer_calls": a.calls} if a.calls else {}),
                           "seconds": seconds[i], "scores":
                           {k: v[i] for k, v in per.items()}, **({"error": a.error} if a.error else {}),
                           **({"sources": retrieval[i]["sources"]} if retrieval else {})}
                          for i, (ex, a) in enumerate(zip(examples, answers))]
    return result


def _cost(ref, usage: dict, n: int) -> dict | None:
    """What the answers cost at a remote model's price (tokens as the provider counted them); None without one."""
    remote = ref.remote
    total = remote.cost(usage["prompt_tokens"], usage["completion_tokens"]) if remote is not None else None
    if total is None:
        return None
    return {"total": total, "per_answer": total / max(n, 1), "currency": remote.currency}


def _special(spec: EvalSpec, models: Models, wanted: list[str], result: dict, progress: bool) -> None:
    """Perplexity on the data's text and multiple-choice accuracy on CSV questions (transformers engine)."""
    from xuetu import models as store

    if not wanted:
        return
    ref = store.resolve(spec.model)
    engine = models.scoring_engine(spec.model)
    digest = file_digest(spec.data)
    if "perplexity" in wanted:
        key = cache_key("perplexity", ref.name, ref.manifest, digest, spec.limit)
        value = cache_get(key)
        if value is None:
            from xuetu.evaluate.perplexity import perplexity

            out = perplexity(engine.model, engine.tokenizer, load_texts(spec.data, spec.limit), progress=progress)
            value = asdict(out)
            cache_put(key, value)
        result["metrics"]["perplexity"] = {"value": value["perplexity"], "tokens": value["tokens"],
                                           "skipped": value.get("skipped", 0),
                                           "per_text": [None if p != p else p for p in value["per_text"]]}  # NaN: skipped
        result.setdefault("n", len(value["per_text"]))
    if "choice" in wanted:
        key = cache_key("choice", ref.name, ref.manifest, digest, spec.limit)
        value = cache_get(key)
        if value is None:
            from xuetu.evaluate import choice

            questions = choice.read_csv(spec.data)[: spec.limit or None]
            value = asdict(choice.score(engine.model, engine.tokenizer, questions, progress=progress))
            cache_put(key, value)
        from xuetu.evaluate.stats import bootstrap_ci

        ci = bootstrap_ci([float(c) for c in value["correct"]])
        result["metrics"]["choice"] = {"value": value["accuracy"], "low": ci.low, "high": ci.high,
                                       "per_subject": value["per_subject"], "n": value["n"]}
        result.setdefault("n", value["n"])


def _preference(spec: EvalSpec, models: Models, result: dict, progress: bool) -> None:
    """Preference accuracy and margin on chosen/rejected pairs, or log-likelihoods of KTO-labelled answers."""
    from xuetu import models as store

    if spec.metrics and set(spec.metrics) != {"preference"}:
        raise XuetuError("the preference metric is scored alone: it reads log-likelihoods, no answers are generated",
                         "Run --metrics preference by itself.")
    ref = store.resolve(spec.model)
    records = preference.load_records(spec.data, spec.limit)
    key = cache_key("preference", ref.name, ref.manifest, file_digest(spec.data), spec.limit)
    value = None if spec.fresh else cache_get(key)
    if value is None:
        engine = models.scoring_engine(spec.model)
        value = asdict(preference.score(engine.model, engine.tokenizer, records, spec.batch, progress))
        cache_put(key, value)
    metrics, examples = preference.summarise(records, preference.Scored(**value))
    result["metrics"].update(metrics)
    result.update(task="preference" if records[0].is_pair else "kto", n=len(records), examples=examples)
