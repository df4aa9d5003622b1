"""`xuetu data clean`: normalise, mask PII, filter and deduplicate a dataset, streaming.

Records flow in batches. The per-record work (parse, normalise, mask, quality checks, hashing,
MinHash signatures) runs in worker processes, one batch each; the main process takes the results
in input order and does what depends on order: exact and near-duplicate decisions and writing.
Every input record ends up in the output or in the rejects file with its reason, so
input = kept + rejected, always. Outputs appear only when the run succeeds.

Preference data (data/prefs.py) is cleaned as what it is for: PII is masked in the rejected answer too; the
quality filters and the language filter judge a pair's prompt and chosen answer, never its rejected one (a bad
rejected answer is the point of it), and only the prompt of an undesirable KTO example; the token bounds
measure the longer of the chosen and rejected conversations; a pair whose answers are the same is rejected
(same_answers); and a duplicate must repeat the prompt, the chosen and the rejected answer (a KTO example: the
prompt, the answer and the label), so pairs that share a prompt are kept. Written as kto, a pair is two lines.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from tqdm.auto import tqdm

from xuetu.data import formats, prefs
from xuetu.data.minhash import CJK_NGRAM, CJK_THRESHOLD, NGRAM, THRESHOLD, check_ngrams
from xuetu.data.normalize import normalize
from xuetu.data.quality import repeated_char_ratios, repeated_line_ratio, symbol_ratios
from xuetu.data.readers import read
from xuetu.data.record import Record
from xuetu.data.writer import JsonlWriter
from xuetu.errors import XuetuError

BATCH = 2048


@dataclass
class CleanArgs:
    normalize: str = "NFKC"
    """Unicode normal form (NFKC turns full-width letters, digits and punctuation half-width), or "none"."""
    pii: bool = False
    """Mask e-mails, phone numbers, ID and bank card numbers and IP addresses."""
    exact_dedup: bool = True
    near_dedup: bool = True
    """MinHash LSH over character shingles (no tokenizer, so Chinese works as well as English)."""
    threshold: float = THRESHOLD
    """Estimated Jaccard similarity of two records' shingle sets at which the later one is rejected as a near
    duplicate, in (0, 1]; higher merges fewer. For records that are not CJK records (English and the like)."""
    cjk_threshold: float = CJK_THRESHOLD
    """The same for CJK records. 0.7 was chosen with cjk_ngram=3 on labelled Chinese pairs
    (benchmarks/dedup_pairs.py); before, CJK records were 5-grams at 0.8, and a one-character edit of a
    short Chinese record was usually kept."""
    ngram: int = NGRAM
    """Shingle length in characters for a record that is not a CJK record (5: about an English word)."""
    cjk_ngram: int = CJK_NGRAM
    """Shingle length for a record in which at least a tenth of the word characters are Chinese, Japanese or
    Korean (3: a Chinese word is one or two characters). cjk_ngram=5 with cjk_threshold=0.8 is the old behaviour."""
    num_perm: int = 128
    min_tokens: int | None = None
    max_tokens: int | None = None
    tokenizer: str | None = None
    """Model whose tokenizer counts tokens for the length bounds (default: the embedded smollm2:135m)."""
    max_repeated_lines: float = 0.3
    max_repeated_chars: float = 0.3
    max_symbols: float = 0.25
    languages: list[str] | None = None
    """Keep only these languages (ISO codes such as zh, en); None keeps all."""
    to: str | None = None
    """Output format; by default each record keeps its own."""
    on_error: str = "fail"
    """What a malformed record does: "fail" stops the run, "skip" rejects it and goes on."""
    workers: int = 0
    """Worker processes; 0 means one per CPU core (none for small inputs)."""

    def __post_init__(self):
        if self.on_error not in ("fail", "skip"):
            raise XuetuError("--on-error must be fail or skip")
        for name, value, default in (("threshold", self.threshold, THRESHOLD),
                                     ("cjk_threshold", self.cjk_threshold, CJK_THRESHOLD)):
            if not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise XuetuError(f"the near-duplicate {name} {value!r} is not in (0, 1]",
                                 f"It is an estimated Jaccard similarity: use a value such as the default {default} "
                                 "(higher merges fewer records), or turn near dedup off with --no-near-dedup.")
        check_ngrams(self.ngram, self.cjk_ngram)
        if self.to is not None and self.to not in formats.FORMATS:
            raise XuetuError(f"unknown format {self.to!r}; choose one of {', '.join(formats.FORMATS)}")
        if self.normalize not in ("NFKC", "NFC", "none"):
            raise XuetuError("normalize must be NFKC, NFC or none")


@dataclass
class Summary:
    input: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    output: str = ""
    rejects: str = ""

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(rejected=dict(self.rejected), pii=dict(self.pii), rejected_total=self.rejected_total,
                 records_per_second=round(self.input / self.seconds, 1) if self.seconds else None)
        return d


class _Reject(Exception):
    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail


@dataclass
class Prepared:
    """A record that passed the per-record checks, as the batch checks and dedup see it."""

    judged: str
    """What the quality and language filters judge (see prefs.judged_text)."""
    measured: list[str]
    """The conversations a trainer renders, for the token bounds (a pair's longer one counts)."""
    dedup: list[str]
    """The texts that must all repeat for a duplicate: the record's, or a preference record's parts."""
    kind: str
    """Records are only duplicates of their own kind: sft, pairs, kto:true or kto:false."""
    out: bytes
    """The output line(s)."""


@dataclass
class BatchResult:
    """What a worker hands back for one batch, in input order."""

    sources: list[str]
    originals: list  # the input object, or the raw text of a malformed item
    outcomes: list  # (reason, detail) for a reject, or (exact_key, output_bytes) for a survivor
    signatures: object  # (n_texts, num_perm) uint32 of the survivors' dedup texts, or None
    cjk: object  # (n_texts,) bool: which of those texts are CJK, or None
    spans: list  # (start, end, kind) per survivor: its rows of signatures and cjk, and its dedup kind
    pii: Counter


def dedup_view(record, text: str) -> tuple[list[str], str]:
    """(the texts a duplicate must repeat, the record's kind) for a normalised record whose text is `text`."""
    if record.is_pair:
        return prefs.dedup_parts(record), "pairs"
    if record.label is not None:
        return prefs.dedup_parts(record), f"kto:{str(record.label).lower()}"
    return [text], "sft"


def exact_key(texts: list[str], kind: str) -> bytes:
    raw = texts[0] if kind == "sft" else "\x1f".join([kind, *texts])
    return hashlib.blake2b(raw.encode(), digest_size=8).digest()


# -- the per-batch work (runs in worker processes) -----------------------------------------------

_checker = None


def _get_checker(args: CleanArgs) -> "RecordChecker":
    global _checker
    if _checker is None or _checker.args != args:
        _checker = RecordChecker(args)
    return _checker


def process_batch(args: CleanArgs, items: list) -> BatchResult:
    return _get_checker(args).run(items)


class RecordChecker:
    """Everything about a record that does not depend on the records before it."""

    def __init__(self, args: CleanArgs):
        self.args = args
        self.hasher = None
        if args.near_dedup:
            from xuetu.data.minhash import MinHasher

            self.hasher = MinHasher(args.num_perm, args.ngram, args.cjk_ngram)
        self.tokenizer = None
        if args.min_tokens is not None or args.max_tokens is not None:
            self.tokenizer = load_tokenizer(args.tokenizer)

    def prepare(self, item, pii: Counter):
        item.parse()
        if item.error:
            raise _Reject("malformed", item.error)
        try:
            record = formats.to_record(item.obj, {"source": item.source})
        except formats.FormatError as e:  # a preference record that teaches nothing has its own reason
            raise _Reject(getattr(e, "reason", "malformed"), str(e))
        record = self._transform(record, pii)
        text = record.joined()
        if not text.strip():
            raise _Reject("empty")
        self._check_turns(record)
        judged = prefs.judged_text(record) if record.is_preference else text
        value = repeated_line_ratio(judged)
        if value > self.args.max_repeated_lines:
            raise _Reject("repeated_lines", f"{value:.2f} > {self.args.max_repeated_lines}")
        if self.args.languages:
            from xuetu.data.language import detect_language

            lang = detect_language(judged)
            if lang not in self.args.languages:
                raise _Reject("language", lang)
        try:
            out = formats.outputs(record, self.args.to or record.meta["format"])
        except formats.FormatError as e:
            raise _Reject("unconvertible", str(e))
        measured = [Record(messages=msgs, system=record.system).joined() for msgs in prefs.sequences(record)] \
            if record.is_preference else [text]
        dump = b"".join(orjson.dumps(o, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS) for o in out)
        return Prepared(judged, measured, *dedup_view(record, text), dump)

    def _transform(self, record, pii: Counter):
        """Normalised and, if asked, with personal data masked (in every text, a rejected answer's too)."""
        form = self.args.normalize
        record = record.map_text(lambda t: normalize(t, form))
        if self.args.pii:
            from xuetu.data.pii import mask_pii

            record = record.map_text(lambda t: mask_pii(t, pii))
        return record

    @staticmethod
    def _check_turns(record) -> None:
        if record.is_text:
            return
        try:
            prefs.check(record)  # normalising can make a pair's answers the same, or a prompt empty
        except prefs.PreferenceError as e:
            raise _Reject(e.reason, str(e))
        if not any(m["role"] == "user" and m["content"] for m in record.messages):
            raise _Reject("no_question", "no non-empty user turn")
        last = record.messages[-1] if record.messages else {"role": None}
        if last["role"] != "assistant" or not (last["content"] or last.get("tool_calls")):
            raise _Reject("no_answer", "the conversation does not end with a non-empty answer or a tool call")

    def run(self, items: list) -> BatchResult:
        pii: Counter = Counter()
        prepared = []
        for item in items:
            try:
                prepared.append(self.prepare(item, pii))
            except _Reject as r:
                prepared.append(r)
        live = [i for i, p in enumerate(prepared) if not isinstance(p, _Reject)]
        texts = [prepared[i].judged for i in live]
        for i, rep, sym in zip(live, repeated_char_ratios(texts), symbol_ratios(texts)):
            if rep > self.args.max_repeated_chars:
                prepared[i] = _Reject("repeated_chars", f"{rep:.2f} > {self.args.max_repeated_chars}")
            elif sym > self.args.max_symbols:
                prepared[i] = _Reject("symbols", f"{sym:.2f} > {self.args.max_symbols}")
        self._check_length(prepared)
        survivors = [p for p in prepared if not isinstance(p, _Reject)]
        texts = [t for p in survivors for t in p.dedup]
        signatures = self.hasher.signatures(texts) if self.hasher is not None and texts else None
        cjk = self.hasher.cjk(texts) if signatures is not None else None
        outcomes, spans, start = [], [], 0
        for p in prepared:
            if isinstance(p, _Reject):
                outcomes.append((p.reason, p.detail))
                continue
            outcomes.append((exact_key(p.dedup, p.kind), p.out))
            spans.append((start, start + len(p.dedup), p.kind))
            start += len(p.dedup)
        return BatchResult([it.source for it in items], [it.obj if it.error is None else it.raw for it in items],
                           outcomes, signatures, cjk, spans, pii)

    def _check_length(self, prepared: list) -> None:
        """Token-length bounds (tokenised together: the fast tokenizer is parallel)."""
        live = [i for i, p in enumerate(prepared) if not isinstance(p, _Reject)]
        if self.tokenizer is None or not live:
            return
        texts = [t for i in live for t in prepared[i].measured]
        counts = iter([len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]])
        lengths = [max(next(counts) for _ in prepared[i].measured) for i in live]  # a pair: its longer side
        for i, n in zip(live, lengths):
            if self.args.min_tokens is not None and n < self.args.min_tokens:
                prepared[i] = _Reject("too_short", f"{n} tokens < {self.args.min_tokens}")
            elif self.args.max_tokens is not None and n > self.args.max_tokens:
                prepared[i] = _Reject("too_long", f"{n} tokens > {self.args.max_tokens}")


def load_tokenizer(name: str | None):
    from transformers import AutoTokenizer

    from xuetu import models
    from xuetu.models.aliases import DEFAULT_MODEL

    ref = models.resolve(name or DEFAULT_MODEL, pull_missing=True, progress=False)
    holder = models.resolve(ref.base) if ref.base else ref
    if holder.hf_dir is None:
        raise XuetuError(f"{ref.name} has no Hugging Face tokenizer files")
    return AutoTokenizer.from_pretrained(holder.hf_dir)


# -- the ordered part (main process) -------------------------------------------------------------

class Deduper:
    """Exact and near-duplicate decisions, in input order; a record is only compared with records of its kind
    (see dedup_view): a preference record is a near duplicate when every one of its parts is."""

    def __init__(self, args: CleanArgs):
        self.exact = args.exact_dedup
        self.seen: dict[bytes, str] = {}
        self.near = args.near_dedup
        self.args = args
        self.indexes: dict[str, object] = {}

    def _index(self, kind: str, parts: int):
        if kind not in self.indexes:
            from xuetu.data.minhash import NearDupIndex, PartIndex

            a = self.args
            self.indexes[kind] = NearDupIndex(a.threshold, a.cjk_threshold, a.num_perm) if kind == "sft" else \
                PartIndex(parts, a.threshold, a.cjk_threshold, a.num_perm)
        return self.indexes[kind]

    def check(self, key: bytes, sigs, cjk, kind: str, source: str) -> tuple[str, str] | None:
        """(reason, detail) if the record duplicates a kept one; otherwise None, and the record is kept in mind.
        sigs: (parts, num_perm) signatures of its dedup texts and cjk their kinds, or None without near dedup."""
        if self.exact and key in self.seen:
            return "exact_duplicate", f"same as {self.seen[key]}"
        if self.near and sigs is not None:
            index = self._index(kind, len(sigs))
            one = kind == "sft"
            hit = index.query(sigs[0], cjk[0]) if one else index.query(sigs, cjk)
            if hit is not None:
                return "near_duplicate", f"{hit[1]:.2f} similar to {hit[0]}"
            index.insert(source, sigs[0], cjk[0]) if one else index.insert(source, sigs, cjk)
        if self.exact:
            self.seen[key] = source
        return None


def _batches(inp: Path):
    batch = []
    for item in read(inp, lazy=True):
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def default_outputs(out: Path) -> tuple[Path, Path]:
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(stem + ".rejects.jsonl"), out.with_name(stem + ".summary.json")


def clean(inp: Path, out: Path, args: CleanArgs | None = None, progress: bool = True) -> Summary:
    args = args or CleanArgs()
    inp, out = Path(inp), Path(out)
    if out.resolve() == inp.resolve():
        raise XuetuError("the output would overwrite the input", "Write the cleaned data to a new file.")
    rejects_path, summary_path = default_outputs(out)
    summary = Summary(output=str(out), rejects=str(rejects_path))
    start = time.perf_counter()
    workers = args.workers or min(os.cpu_count() or 1, 8)
    small = not args.workers and inp.is_file() and inp.stat().st_size < 4 << 20  # a pool costs more than it saves
    pool = ProcessPoolExecutor(workers) if workers > 1 and not small else None
    kept, rejects = JsonlWriter(out), JsonlWriter(rejects_path)
    dedup = Deduper(args)
    bar = tqdm(desc="cleaning", unit=" records", disable=not progress, mininterval=0.5)
    try:
        if pool is None:
            results = (process_batch(args, b) for b in _batches(inp))
        else:
            results = _ordered(pool, args, _batches(inp), ahead=2 * workers)
        for result in results:
            _absorb(result, args, dedup, kept, rejects, summary)
            bar.update(len(result.sources))
    except BaseException:
        kept.abort()
        rejects.abort()
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    summary.seconds = time.perf_counter() - start
    assert summary.input == summary.kept + summary.rejected_total  # every record is accounted for
    rejects.commit()
    summary_path.write_bytes(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
    if summary.kept == 0:
        kept.abort()
        raise XuetuError(f"no record survived cleaning ({summary.input} read, all rejected)",
                         f"See why in {rejects_path}; loosen the filters if they are too strict.")
    kept.commit()
    return summary


def _ordered(pool, args, batches, ahead: int):
    """Results of process_batch in input order, with at most `ahead` batches in flight (bounded memory)."""
    pending = deque()
    for batch in batches:
        pending.append(pool.submit(process_batch, args, batch))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _absorb(result: BatchResult, args: CleanArgs, dedup: Deduper, kept: JsonlWriter, rejects: JsonlWriter,
            summary: Summary) -> None:
    summary.pii.update(result.pii)
    survivor = 0
    for source, original, outcome in zip(result.sources, result.originals, result.outcomes):
        summary.input += 1
        first, second = outcome
        if isinstance(first, str):  # rejected by the worker
            if first == "malformed" and args.on_error == "fail":
                raise XuetuError(f"{source}: {second}",
                                 "Fix the record, or pass --on-error skip to reject bad records and go on.")
            reason, detail = first, second
        else:
            start, end, kind = result.spans[survivor]
            sigs = result.signatures[start:end] if result.signatures is not None else None
            cjk = result.cjk[start:end] if result.cjk is not None else None
            survivor += 1
            verdict = dedup.check(first, sigs, cjk, kind, source)
            if verdict is None:
                kept.write_raw(second)
                summary.kept += 1
                continue
            reason, detail = verdict
        summary.rejected[reason] += 1
        rejects.write({"reason": reason, "detail": detail, "source": source, "record": original})
