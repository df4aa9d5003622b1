"""Model repositories are data, never code: the hub download filter admits no Python, and nothing in src/
asks transformers to run a repository's code."""

from __future__ import annotations

import re
from pathlib import Path

from xuetu.models.hub import RemoteFile, select_files

SRC = Path(__file__).resolve().parents[2] / "src"


def _remote(path: str) -> RemoteFile:
    return RemoteFile(path=path, size=1)


def test_download_filter_admits_no_code():
    names = ["modeling_evil.py", "configuration_x.py", "LICENSE.py", "LICENSE_helper.py", "sub/tokenizer.py",
             "README.md.py", "kernel.so", "LICENSE", "config.json", "model.safetensors"]
    chosen = {f.path for f in select_files([_remote(n) for n in names])}
    assert chosen == {"LICENSE", "config.json", "model.safetensors"}


def test_no_trust_remote_code_in_src():
    hits = [f"{p.relative_to(SRC)}" for p in SRC.rglob("*.py")
            if re.search(r"trust_remote_code['\"]?\s*[=:]\s*(?!False)", p.read_text(encoding="utf-8"))]
    assert hits == []
