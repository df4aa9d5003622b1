"""Where a benchmark's section goes, and the machine it was measured on.

Under `make bench` (benchmarks/run_all.py) a script's section goes to the file the runner names in
XUETU_BENCH_SECTION, and the runner writes the whole of benchmarks/RESULTS.md, with the machine named once at
the top. Run alone, a script replaces only its own section of RESULTS.md, marked as measured alone, with the
machine and the date, so a file that mixes runs says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION_ENV = "XUETU_BENCH_SECTION"


def _cpuinfo() -> dict[str, str]:
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def machine() -> str:
    """One line: the CPU model and its logical cores."""
    return f"{_cpuinfo().get('model name') or platform.processor() or 'cpu'}, {os.cpu_count()} cores"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    root = Path(__file__).parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" with uncommitted changes" if dirty else "")


def machine_details() -> list[str]:
    """The machine and software a run measured, one fact per line, for RESULTS.md's header."""
    flags = _cpuinfo().get("flags", "").split()
    bf16 = "yes" if {"avx512_bf16", "amx_bf16"} & set(flags) else "no"
    try:
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
        ram = f"{kb / 1024 ** 2:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        ram = "unknown"
    return [f"CPU: {machine()}; bf16 units (AVX512-BF16 or AMX): {bf16}",
            f"memory: {ram}; load average at the start: {os.getloadavg()[0]:.1f}",
            f"system: {platform.platform()}",
            f"python {platform.python_version()}, torch {_version('torch')}, transformers {_version('transformers')}, "
            f"llama-cpp-python {_version('llama_cpp_python')}",
            f"xuetu commit: {_git_commit()}"]


def section_block(section: str, title: str, lines: str) -> str:
    return f"<!-- {section}:start -->\n## {title}\n\n{lines.strip()}\n<!-- {section}:end -->"


def record(section: str, title: str, body: str) -> None:
    """Hand a benchmark's section to the runner, or, run alone, replace that section of RESULTS.md."""
    out = os.environ.get(SECTION_ENV)
    if out:
        Path(out).write_text(json.dumps({"section": section, "title": title, "body": body.strip()}), encoding="utf-8")
        return
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["benchmarks/" + Path(sys.argv[0]).name, *sys.argv[1:]])
    note = (f"*Measured alone (`{command}`) on {machine()} at {stamp}, not in the run the top of this file "
            "describes.*")
    block = section_block(section, title, f"{note}\n\n{body.strip()}")
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, RESULTS)
    print("\nrecorded in benchmarks/RESULTS.md (this section only, marked as measured alone)")
