"""Every benchmark in one run, on one machine: what `make bench` runs. It rewrites benchmarks/RESULTS.md whole.

Each script runs in its own process, one after another, with the flags of PLAN; its output goes to
benchmarks/out/<name>.log and the terminal gets one line per benchmark. A script hands its section back
through _record.record; a crash, a time-out or a missing section is reported in that benchmark's section,
the others carry on, and the runner exits 1 at the end. RESULTS.md is replaced in one step at the end: the
machine and the run (start, end, duration, flags and wall time per benchmark) once at the top, then the
sections in run order. About 75 minutes on 2 cores.

    .venv/bin/python benchmarks/run_all.py [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _record import RESULTS, SECTION_ENV, machine_details, section_block  # noqa: E402

HERE = Path(__file__).resolve().parent
LOGS = HERE / "out"
MIN_LIMIT_S = 600.0


@dataclass(frozen=True)
class Bench:
    script: str
    flags: tuple[str, ...]
    minutes: float
    """About how long it takes on 2 cores; three times this (at least MIN_LIMIT_S) is its time limit."""

    @property
    def name(self) -> str:
        return Path(self.script).stem

    @property
    def command(self) -> str:
        return " ".join(["benchmarks/" + self.script, *self.flags])


# The flags are the scripts' own defaults, written out so each section shows what it ran with; the minutes
# are estimates for 2 cores. train.py takes a third of the run: two alternating rounds per side (the fastest
# counts, so one slow moment does not decide the ratio), in fp32 and, where the CPU has bf16 units, in bf16.
# train_ceiling.py skips its own HF Trainer run: train.py measures that baseline in this same run. align.py (DPO
# against TRL's DPOTrainer) also runs two alternating rounds per side.
PLAN = (
    Bench("decode.py", ("--tokens", "128", "--runs", "3"), 2),
    Bench("serve.py", ("--tokens", "128"), 10),  # plus about 10 minutes once per machine to build llama-server
    Bench("data.py", ("--records", "200000", "--baseline-records", "20000"), 2),
    Bench("train.py", ("--records", "192", "--rounds", "2"), 30),
    Bench("train_ceiling.py", ("--no-baseline",), 1),
    Bench("align.py", ("--pairs", "64", "--rounds", "2", "--trl-ref", "per-step"), 10),
    Bench("rag.py", ("--sizes", "10000,100000"), 6),
    Bench("quant.py", ("--tokens", "128"), 3),
    Bench("export.py", ("--tokens", "128", "--runs", "3"), 3),
    Bench("evaluate.py", ("--questions", "16", "--tokens", "64", "--batch", "8"), 2),
    Bench("safety.py", ("--live",), 3),
    Bench("safety_cv.py", ("--folds", "5"), 2),
    Bench("hostile.py", (), 1),
    Bench("remote.py", ("--chunks", "100", "--rounds", "5", "--interval-ms", "5", "--first-token-runs", "40"), 1),
    Bench("tools.py", ("--rounds", "5"), 4),
    Bench("small_model.py", ("--seeds", "3"), 4),
)


@dataclass
class Outcome:
    bench: Bench
    seconds: float
    section: dict | None  # {"section", "title", "body"} as the script recorded it
    failure: str | None  # why there is no section
    log: Path
    log_shown: str  # relative to the repository


def duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m{s:02d}s" if m >= 60 else f"{m}m{s:02d}s" if m else f"{s}s"


def tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").replace("\r", "\n").splitlines()
    return "\n".join(line[:300] for line in text[-lines:] if line.strip())


def run_one(bench: Bench, bench_dir: Path, logs: Path, scratch: Path) -> Outcome:
    section_file = scratch / f"{bench.name}.json"
    log = logs / f"{bench.name}.log"
    limit = max(MIN_LIMIT_S, bench.minutes * 60 * 3)
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        # Its own process group, so that whatever it leaves running (a server, after a crash or a time-out) ends
        # with it, Ctrl-C on the runner included.
        proc = subprocess.Popen([sys.executable, str(bench_dir / bench.script), *bench.flags], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, SECTION_ENV: str(section_file)},
                                cwd=bench_dir.parent, start_new_session=True)
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    seconds = time.perf_counter() - start
    section = json.loads(section_file.read_text(encoding="utf-8")) if section_file.exists() else None
    failure = None
    if rc is None:
        failure = f"stopped at its time limit of {duration(limit)}"
    elif rc != 0:
        failure = f"exited with status {rc}"
    elif section is None:
        failure = "finished without recording a section"
    return Outcome(bench, seconds, None if failure else section, failure, log,
                   os.path.relpath(log.resolve(), bench_dir.parent))


def render(outcomes: list[Outcome], details: list[str], started: dt.datetime, ended: dt.datetime,
           total: float) -> str:
    fmt = "%Y-%m-%d %H:%M UTC"
    failed = [o for o in outcomes if o.failure]
    lines = ["# Benchmark results", "",
             f"Written whole by `make bench` (`benchmarks/run_all.py`): the {len(outcomes)} benchmarks below ran in "
             "this one run, one after another, on this machine. Baselines are measured in the same run as what they "
             "are compared with. A section marked *measured alone* was rerun by its script later and is not from "
             "this run.", "",
             *[f"- {d}" for d in details],
             f"- run: {started.strftime(fmt)} to {ended.strftime(fmt)}, {duration(total)}; load average at the end: "
             f"{os.getloadavg()[0]:.1f}"
             + (f"; **{len(failed)} failed**: " + ", ".join(o.bench.script for o in failed) if failed else ""),
             "", "| benchmark | command | wall time | result |", "|---|---|---:|---|"]
    lines += [f"| {o.bench.name} | `{o.bench.command}` | {duration(o.seconds)} | {o.failure or 'ok'} |"
              for o in outcomes]
    text = "\n".join(lines) + "\n"
    for o in outcomes:
        ran = f"Run: `{o.bench.command}`, {duration(o.seconds)} wall time."
        if o.section:
            body = f"{ran}\n\n{o.section['body']}"
            text += "\n" + section_block(o.section["section"], o.section["title"], body) + "\n"
        else:
            body = (f"{ran}\n\n**Failed: {o.failure}.** The last lines of its output "
                    f"(the whole log was `{o.log_shown}` on the machine that ran it):\n\n"
                    f"```\n{tail(o.log)}\n```")
            text += "\n" + section_block(o.bench.name, f"{o.bench.script}: failed", body) + "\n"
    return text


KEPT = ("gpu",)
"""Sections measured on another machine (benchmarks/gpu.py, on a lent GPU): a CPU run cannot remeasure them, so
they are carried over from the old file as they were, each still saying where and when it was measured."""


def kept_sections(old: Path) -> str:
    text = old.read_text(encoding="utf-8") if old.exists() else ""
    blocks = [m.group(0) for name in KEPT
              for m in [re.search(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", text, flags=re.S)] if m]
    return "".join("\n" + b + "\n" for b in blocks)


def run(plan: tuple[Bench, ...], out: Path = RESULTS, bench_dir: Path = HERE, logs: Path = LOGS) -> int:
    """Run every benchmark of `plan`, write `out` whole; 0 when all of them recorded their section, else 1."""
    bench_dir = bench_dir.resolve()
    logs.mkdir(parents=True, exist_ok=True)
    details = machine_details()
    started, t0 = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    print(f"{len(plan)} benchmarks, about {duration(sum(b.minutes for b in plan) * 60)} on 2 cores; logs in {logs}",
          flush=True)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="xuetu-bench-") as scratch:
        for i, bench in enumerate(plan, 1):
            print(f"[{i}/{len(plan)}] {bench.script} …", end=" ", flush=True)
            outcome = run_one(bench, bench_dir, logs, Path(scratch))
            outcomes.append(outcome)
            print(duration(outcome.seconds) + (f"  FAILED: {outcome.failure} (see {outcome.log})"
                                               if outcome.failure else ""), flush=True)
    total = time.perf_counter() - t0
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render(outcomes, details, started, dt.datetime.now(dt.timezone.utc), total) + kept_sections(out),
                   encoding="utf-8")
    os.replace(tmp, out)
    failed = [o for o in outcomes if o.failure]
    print(f"wrote {out}: {len(outcomes) - len(failed)} of {len(outcomes)} benchmarks recorded, "
          f"{duration(total)}" + (f"; failed: {', '.join(o.bench.script for o in failed)}" if failed else ""))
    return 1 if failed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="print the plan and the time estimate, run nothing")
    args = ap.parse_args()
    if args.dry_run:
        for i, b in enumerate(PLAN, 1):
            print(f"[{i}/{len(PLAN)}] {b.command}  (about {b.minutes:g} min)")
        print(f"about {duration(sum(b.minutes for b in PLAN) * 60)} on 2 cores")
        return
    sys.exit(run(PLAN))


if __name__ == "__main__":
    main()
