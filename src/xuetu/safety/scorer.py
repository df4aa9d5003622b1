"""The scorer: a linear model over character and word n-grams that rates how likely a text is an attack,
and of which kind. Rules catch what they were written for; the scorer catches attacks worded otherwise.

- Learnt from the examples that ship in safety/examples/*.jsonl (6,123 texts written for xuetu in Chinese
  and English, more than half of them benign and most of those hard negatives) and the user's own
  XUETU_HOME/safety/examples/*.jsonl: one line each, {"text": ..., "label": ..., "channel": "user"|"document"}.
- Features: character 1-3-grams and word 1-2-grams of the de-obfuscated text (normalize.py), hashed, tf-idf
  weighted; a retrieved document carries a marker, so the same words can mean different things there.
- Model: multinomial logistic regression (benign + 10 categories). A text is flagged when its probability
  of being an attack reaches the threshold (0.40 by default, chosen on the dev half of benchmarks/safety.py).
  The harmful-content categories (violence, sexual, hate, self_harm, illegal) count only when a word of
  their rules' lexicon is in the text, or when the scorer gives the category alone at least `strong` (0.5:
  more than even odds), so a common word that happens to lean one way ("describe") is not enough on its own.
  `strong` was chosen by cross-validation on the examples (benchmarks/safety_cv.py).
- Long texts are scored in overlapping 400-character windows; the most suspicious one counts. Texts under 6
  characters ("hi", "继续") are left to the rules: their n-grams say too little.
- Ships trained (scorer.npz beside this file, learnt from the shipped examples and stamped with their
  fingerprint), so no request and no first run pays for training. Only a user's own examples make it
  learn again (a few seconds, at `xuetu guard add` or when a guard is built); that model is cached by
  the examples' content in ~/.cache/xuetu/safety (XDG_CACHE_HOME is honoured). After editing the
  shipped examples, `python -m xuetu.safety.scorer` writes scorer.npz anew (a test holds the two
  together). About a tenth of a millisecond a text.

It runs on user messages and retrieved documents, not on model output (it learnt requests, not answers).

    scorer: {threshold: 0.40, strong: 0.5}   # in the policy; `scorer: off` turns it off
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xuetu.errors import XuetuError
from xuetu.safety.normalize import deleet, fold, join_spaced
from xuetu.safety.rules import Finding, Lexicons

VERSION = 2  # bump when features or training change: old caches are then ignored
EXAMPLES = Path(__file__).with_name("examples")
SHIPPED = Path(__file__).with_name("scorer.npz")  # learnt from EXAMPLES alone, stamped with their fingerprint
LABELS = ("benign", "violence", "sexual", "hate", "self_harm", "illegal", "injection", "jailbreak",
          "system_prompt_extraction", "exfiltration", "indirect_injection")
THRESHOLD = 0.40
STRONG = 0.5
N_CHAR, N_WORD = 2**20, 2**18
WINDOW, STRIDE = 400, 300
MIN_CHARS = 6  # shorter texts ("hi", "继续", "ok thx") give n-grams too little to go on: the rules alone judge them
C = 30.0
KEEP = 3  # cached models kept (the newest)
DOC_MARK = "〔doc〕 "
_ON_DOCUMENTS = {"injection": "indirect_injection", "jailbreak": "indirect_injection",
                 "system_prompt_extraction": "indirect_injection"}
_ON_USER = {"indirect_injection": "injection"}


def user_dir() -> Path:
    from xuetu.home import xuetu_home

    return xuetu_home() / "safety" / "examples"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xuetu" / "safety"


def prepare(text: str, channel: str) -> str:
    return (DOC_MARK if channel == "document" else "") + join_spaced(deleet(fold(text)))


@functools.cache
def _vectorizers():
    from sklearn.feature_extraction.text import HashingVectorizer

    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=N_CHAR, alternate_sign=False,
                              norm=None)
    words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=N_WORD, alternate_sign=False,
                              norm=None, token_pattern=r"(?u)\b\w+\b")
    return chars, words


def counts(texts: list[str]):
    """(n, N_CHAR + N_WORD) sparse n-gram counts of prepared texts."""
    import scipy.sparse as sp

    chars, words = _vectorizers()
    return sp.hstack([chars.transform(texts), words.transform(texts)], format="csr")


def windows(text: str) -> list[str]:
    if len(text) <= WINDOW:
        return [text]
    return [text[i:i + WINDOW] for i in range(0, len(text) - WINDOW + STRIDE, STRIDE)]


@functools.cache
def _analyzers():
    chars, words = _vectorizers()
    return chars.build_analyzer(), words.build_analyzer()


_IDS: tuple[dict[str, int], dict[str, int]] = ({}, {})  # n-gram -> hashed feature index, memoised


def feature_ids(prepared: str) -> np.ndarray:
    """The hashed feature index of every n-gram of a prepared text, repeats included: the same indices as
    counts() (HashingVectorizer), but each n-gram's hash is remembered, so scoring costs a dict lookup per
    n-gram instead of a sparse matrix over 1.3M columns."""
    from sklearn.utils import murmurhash3_32

    out: list[int] = []
    for grams, memo, size, offset in zip((a(prepared) for a in _analyzers()), _IDS, (N_CHAR, N_WORD), (0, N_CHAR)):
        if len(memo) > 1_000_000:
            memo.clear()  # bounded: a long-running server sees endless new n-grams
        for g in grams:
            i = memo.get(g)
            if i is None:
                i = memo[g] = abs(murmurhash3_32(g, seed=0)) % size + offset
            out.append(i)
    return np.array(out, dtype=np.int64)


@dataclass
class Model:
    classes: list[str]
    idf: np.ndarray
    """(features,) float32; zero where no example had the feature"""
    coef: object
    """(features, classes) sparse"""
    intercept: np.ndarray
    info: dict

    def __post_init__(self):
        # Dense weights for just the features some example had (a few hundred thousand rows of 11): a text
        # is then scored in a few small numpy steps.
        nz = np.flatnonzero(self.idf)
        self._row = np.full(self.idf.shape[0], -1, dtype=np.int32)
        self._row[nz] = np.arange(len(nz), dtype=np.int32)
        self._idf = self.idf[nz]
        self._w = np.asarray(self.coef[nz].todense(), dtype=np.float32)

    def probabilities(self, prepared: list[str]) -> np.ndarray:
        """(texts, classes): sublinear tf-idf, L2-normalised, through the linear model and a softmax."""
        z = np.empty((len(prepared), len(self.classes)), dtype=np.float64)
        for k, text in enumerate(prepared):
            ids, n = np.unique(feature_ids(text), return_counts=True)
            rows = self._row[ids]
            seen = rows >= 0  # n-grams no example had weigh nothing (their idf is 0)
            rows = rows[seen]
            x = (np.log(n[seen]) + 1.0) * self._idf[rows]
            z[k] = x @ self._w[rows] / max(float(np.sqrt(x @ x)), 1e-12) + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def probabilities_sparse(self, prepared: list[str]) -> np.ndarray:
        """The same through scipy's sparse matrices, as in training: kept to check the fast path against."""
        x = counts(prepared)
        x.data = np.log(x.data) + 1.0  # sublinear tf, as sklearn's TfidfTransformer(sublinear_tf=True)
        x = x.multiply(self.idf).tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        z = np.asarray((x @ self.coef).todense()) / np.maximum(norms, 1e-12)[:, None] + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        import tempfile

        import scipy.sparse as sp

        path.parent.mkdir(parents=True, exist_ok=True)
        coef = sp.csr_matrix(self.coef)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(fd)
        nz = np.flatnonzero(self.idf)
        np.savez_compressed(tmp, classes=np.array(self.classes), idf_index=nz, idf_value=self.idf[nz],
                            data=coef.data, indices=coef.indices, indptr=coef.indptr, intercept=self.intercept,
                            info=np.array(json.dumps(self.info)))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the shipped model is read by every user
        os.replace(tmp, path)  # atomic: another process never reads half a model

    @classmethod
    def load(cls, path: Path) -> "Model":
        import scipy.sparse as sp

        with np.load(path, allow_pickle=False) as z:
            idf = np.zeros(N_CHAR + N_WORD, dtype=np.float32)
            idf[z["idf_index"]] = z["idf_value"]
            classes = [str(c) for c in z["classes"]]
            coef = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(N_CHAR + N_WORD, len(classes)))
            return cls(classes, idf, coef, z["intercept"], json.loads(str(z["info"])))


def load_examples(folders: list[Path]) -> list[dict]:
    """{text, label, channel} rows from every *.jsonl in the folders; a bad line is an error that says where."""
    rows = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*.jsonl")):
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise XuetuError(f"cannot read the safety examples {path}: {e}", "Save it as UTF-8 JSONL.") from None
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    text, label = row["text"], row["label"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise XuetuError(f"{path}:{n} is not an example",
                                     'Each line needs {"text": ..., "label": ...}, and optionally "channel": '
                                     '"user" or "document".') from None
                channel = row.get("channel", "user")
                if label not in LABELS or not isinstance(text, str) or not text.strip() or \
                        channel not in ("user", "document"):
                    raise XuetuError(f"{path}:{n}: the label must be one of {', '.join(LABELS)}, the text not "
                                     "empty, and the channel user or document", "Fix the line, or remove it.")
                rows.append({"text": text, "label": label, "channel": channel})
    return rows


def train(rows: list[dict]) -> Model:
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    labels = {r["label"] for r in rows}
    if "benign" not in labels or len(labels) < 2:
        raise XuetuError("the scorer's examples need benign texts and at least one attack category")
    x = counts([prepare(r["text"], r["channel"]) for r in rows])
    tfidf = TfidfTransformer(sublinear_tf=True).fit(x)
    idf = tfidf.idf_.astype(np.float32)
    idf[np.asarray((x != 0).sum(axis=0)).ravel() == 0] = 0.0  # features no example has never count
    # Benign texts weigh as much as all attacks together, and the categories equally among themselves: a
    # text with little to go on (a greeting) then starts at even odds, not at 10 to 1 for "some attack".
    y = [r["label"] for r in rows]
    n = {lab: y.count(lab) for lab in labels}
    k = len(labels) - 1
    weight = np.array([len(y) / 2 / n[lab] if lab == "benign" else len(y) / 2 / k / n[lab] for lab in y])
    model = LogisticRegression(C=C, solver="saga", max_iter=300, tol=1e-3, random_state=0)
    model.fit(tfidf.transform(x), y, sample_weight=weight)
    import scipy.sparse as sp

    coef = model.coef_.T.astype(np.float32)
    coef[idf == 0] = 0.0
    counts_by = {lab: sum(r["label"] == lab for r in rows) for lab in sorted(labels)}
    return Model([str(c) for c in model.classes_], idf, sp.csr_matrix(coef), model.intercept_.astype(np.float32),
                 {"version": VERSION, "examples": counts_by})


def _fingerprint(folders: list[Path]) -> str:
    h = hashlib.sha256(f"{VERSION}/{N_CHAR}/{N_WORD}/{C}".encode())
    for folder in folders:
        for path in sorted(Path(folder).glob("*.jsonl")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def folders() -> list[Path]:
    own = user_dir()
    return [EXAMPLES, *([own] if own.is_dir() and any(own.glob("*.jsonl")) else [])]


def model() -> Model:
    """The model for the current examples: the shipped one when the user has added none, else a cached
    one, learnt now (a few seconds; said through xuetu.notify) when their examples changed."""
    where = folders()
    return _model(_fingerprint(where), tuple(where))


def shipped_model() -> Model | None:
    """The model that ships in the package, or None when it is missing or stale (learnt from other
    examples than the ones shipped beside it)."""
    try:
        m = Model.load(SHIPPED)
    except (OSError, ValueError, KeyError):
        return None
    return m if m.info.get("fingerprint") == _fingerprint([EXAMPLES]) else None


@functools.lru_cache(maxsize=4)
def _model(key: str, where: tuple[Path, ...]) -> Model:
    if list(where) == [EXAMPLES] and (m := shipped_model()) is not None:
        return m
    path = cache_dir() / f"scorer-{key}.npz"
    if path.exists():
        try:
            return Model.load(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is simply rebuilt
    from xuetu.notify import say

    say("the safety scorer is learning your examples (a few seconds)…")
    m = train(load_examples(list(where)))
    m.info["fingerprint"] = key
    try:
        m.save(path)
        for old in sorted(path.parent.glob("scorer-*.npz"), key=lambda p: p.stat().st_mtime)[:-KEEP]:
            old.unlink(missing_ok=True)  # models for examples since changed
    except OSError:
        pass  # a read-only cache only costs the training next time
    return m


def build_shipped(path: Path = SHIPPED) -> Model:
    """Learn the shipped examples and write the model that ships with the package."""
    m = train(load_examples([EXAMPLES]))
    m.info["fingerprint"] = _fingerprint([EXAMPLES])
    m.save(path)
    return m


class Scorer:
    def __init__(self, spec: dict | None = None, lexicons: dict[str, tuple[str, ...]] | None = None,
                 trained: Model | None = None):
        spec = spec or {}
        self.threshold = float(spec.get("threshold", THRESHOLD))
        if not 0 < self.threshold < 1:
            raise XuetuError(f"the scorer threshold must be between 0 and 1, got {self.threshold}")
        self.channels = tuple(spec.get("channels") or ("user", "document"))
        self.strong = float(spec.get("strong", STRONG))
        if self.strong < 0:
            raise XuetuError(f"the scorer's strong must be 0 or more (above 1: never without a lexicon word), "
                             f"got {self.strong}")
        self.model = trained or model()
        if lexicons is None:
            from xuetu.safety.rules import load_rules

            lexicons = {}
            for r in load_rules():  # harmful-content categories only: an injection needs no topic words
                if r.lexicon and r.kind == "moderation":
                    lexicons[r.category] = tuple(sorted(set(lexicons.get(r.category, ())) | set(r.lexicon)))
        self.lexicons = lexicons
        self._index = Lexicons(tuple(lexicons.values()))

    def score(self, text: str, channel: str) -> tuple[str, float]:
        """(the likeliest attack category, the probability that the text is an attack), for its worst window.

        A harmful-content category (violence, sexual, hate, self_harm, illegal: the ones whose rules carry a
        lexicon) counts only when one of its words is in the text: n-grams alone would read "describe" as
        sexual, since the examples' sexual requests say it and benign ones rarely do. Its probability then
        goes to "not an attack", unless the scorer gives that category alone at least `strong`."""
        prepared = [prepare(w, channel) for w in windows(text)]
        probs = self.model.probabilities(prepared)
        classes = self.model.classes
        hits = self._index.hits(" ".join(prepared).lower())
        live = np.array([c != "benign" and (c not in self.lexicons or self.lexicons[c] in hits) for c in classes])
        gated = np.array([c in self.lexicons for c in classes])
        live = live[None, :] | (gated[None, :] & (probs >= self.strong))  # strong evidence needs no word
        attack = (probs * live).sum(axis=1)
        worst = int(attack.argmax())
        row = np.where(live[worst], probs[worst], -1.0)
        category = classes[int(row.argmax())] if live[worst].any() else "benign"
        return (_ON_DOCUMENTS if channel == "document" else _ON_USER).get(category, category), float(attack[worst])

    def find(self, text: str, channel: str) -> list[Finding]:
        if channel not in self.channels or len("".join(text.split())) < MIN_CHARS:
            return []
        category, p = self.score(text, channel)
        if p < self.threshold:
            return []
        return [Finding(category, f"scorer.{category}", f"the n-gram scorer rates this {p:.2f} likely an attack, "
                        f"most like {category} (threshold {self.threshold}); words that weighed most: "
                        f"{', '.join(self.evidence(text, channel, category))}", "", channel, source="scorer")]

    def evidence(self, text: str, channel: str, category: str, n: int = 5) -> list[str]:
        """The words that pushed hardest from benign towards `category`: a Latin word weighs its own
        feature plus the character n-grams inside it; Chinese shows its 2- and 3-character n-grams."""
        import re

        from sklearn.utils import murmurhash3_32

        classes = self.model.classes
        label = next((c for c in (category, *[k for k, v in _ON_DOCUMENTS.items() if v == category]) if c in classes),
                     None)
        if label is None:
            return []
        chars = _vectorizers()[0].build_analyzer()
        prepared = prepare(text, channel).removeprefix(DOC_MARK)
        grams: dict[str, list[int]] = {}  # a shown word or n-gram -> the features it stands for
        for word in set(re.findall(r"[a-z0-9']{3,}", prepared)):  # shorter words say little to a reader
            grams[word] = [N_CHAR + abs(murmurhash3_32(word, seed=0)) % N_WORD,
                           *(abs(murmurhash3_32(g, seed=0)) % N_CHAR for g in set(chars(word)))]
        for run in re.findall(r"[\u3400-\u9fff]+", prepared):
            for k in (2, 3):
                for i in range(len(run) - k + 1):
                    grams[run[i:i + k]] = [abs(murmurhash3_32(run[i:i + k], seed=0)) % N_CHAR]
        if not grams:
            return []
        index = sorted({j for js in grams.values() for j in js})
        rows = self.model.coef[index].toarray()  # only the features this text has: fast
        weight = dict(zip(index, (rows[:, classes.index(label)] - rows[:, classes.index("benign")])
                          * self.model.idf[index]))
        scores = {g: float(sum(weight[j] for j in js)) for g, js in grams.items()}
        out: list[str] = []
        for gram in sorted((g for g in scores if scores[g] > 0), key=scores.get, reverse=True):
            if not any(gram in o or o in gram for o in out):  # one of overlapping n-grams is enough
                out.append(gram)
            if len(out) == n:
                break
        return [repr(g) for g in out]


if __name__ == "__main__":  # after editing safety/examples: python -m xuetu.safety.scorer
    built = build_shipped()
    print(f"wrote {SHIPPED} ({SHIPPED.stat().st_size / 1e6:.1f} MB) from {sum(built.info['examples'].values())} "
          f"examples, fingerprint {built.info['fingerprint']}")
