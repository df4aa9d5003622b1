"""Where the fitted scorer lives: the one that ships (scorer.npz beside safety/examples, stamped with
their fingerprint), and models learnt from a user's own examples, cached by the examples' content in
~/.cache/xuetu/safety (XDG_CACHE_HOME is honoured)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from xuetu.safety.scorer import learn
from xuetu.safety.scorer.features import N_CHAR, N_WORD
from xuetu.safety.scorer.learn import EXAMPLES, VERSION
from xuetu.safety.scorer.model import Model

SHIPPED = Path(__file__).parent.parent / "scorer.npz"  # learnt from EXAMPLES alone, stamped with their fingerprint
KEEP = 3  # cached models kept (the newest)


def user_dir() -> Path:
    from xuetu.home import xuetu_home

    return xuetu_home() / "safety" / "examples"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xuetu" / "safety"


def save(m: Model, path: Path) -> None:
    """Write `m` to `path` atomically (another process never reads half a model)."""
    import tempfile

    import scipy.sparse as sp

    path.parent.mkdir(parents=True, exist_ok=True)
    coef = sp.csr_matrix(m.coef)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    nz = np.flatnonzero(m.idf)
    np.savez_compressed(tmp, classes=np.array(m.classes), idf_index=nz, idf_value=m.idf[nz],
                        data=coef.data, indices=coef.indices, indptr=coef.indptr, intercept=m.intercept,
                        info=np.array(json.dumps(m.info)))
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the shipped model is read by every user
    os.replace(tmp, path)


def load(path: Path) -> Model:
    import scipy.sparse as sp

    with np.load(path, allow_pickle=False) as z:
        idf = np.zeros(N_CHAR + N_WORD, dtype=np.float32)
        idf[z["idf_index"]] = z["idf_value"]
        classes = [str(c) for c in z["classes"]]
        coef = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(N_CHAR + N_WORD, len(classes)))
        return Model(classes, idf, coef, z["intercept"], json.loads(str(z["info"])))


def fingerprint(folders: list[Path]) -> str:
    h = hashlib.sha256(f"{VERSION}/{N_CHAR}/{N_WORD}/{learn.C}".encode())
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
    return cached_model(fingerprint(where), tuple(where))


def shipped_model() -> Model | None:
    """The model that ships in the package, or None when it is missing or stale (learnt from other
    examples than the ones shipped beside it)."""
    try:
        m = load(SHIPPED)
    except (OSError, ValueError, KeyError):
        return None
    return m if m.info.get("fingerprint") == fingerprint([EXAMPLES]) else None


@functools.lru_cache(maxsize=4)
def cached_model(key: str, where: tuple[Path, ...]) -> Model:
    if list(where) == [EXAMPLES] and (m := shipped_model()) is not None:
        return m
    path = cache_dir() / f"scorer-{key}.npz"
    if path.exists():
        try:
            return load(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is simply rebuilt
    from xuetu.notify import say

    say("the safety scorer is learning your examples (a few seconds)…")
    m = learn.train(learn.load_examples(list(where)))
    m.info["fingerprint"] = key
    try:
        save(m, path)
        for old in sorted(path.parent.glob("scorer-*.npz"), key=lambda p: p.stat().st_mtime)[:-KEEP]:
            old.unlink(missing_ok=True)  # models for examples since changed
    except OSError:
        pass  # a read-only cache only costs the training next time
    return m


def build_shipped(path: Path = SHIPPED) -> Model:
    """Learn the shipped examples and write the model that ships with the package."""
    m = learn.train(learn.load_examples([EXAMPLES]))
    m.info["fingerprint"] = fingerprint([EXAMPLES])
    save(m, path)
    return m
