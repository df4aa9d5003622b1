"""`make bench`'s runner (benchmarks/run_all.py) on stand-in benchmarks: one file, one machine line, failures kept."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _record  # noqa: E402
import run_all  # noqa: E402
from run_all import Bench  # noqa: E402

RECORDS = f"import sys\nsys.path.insert(0, {str(BENCHMARKS)!r})\nfrom _record import record\n"
SCRIPTS = {
    "fast.py": RECORDS + "print('warming up')\nrecord('fast', 'Fast thing', '| run | tokens/s |\\n|---|---:|\\n| "
                         "ours | 12.5 |\\n\\n- flags: ' + ' '.join(sys.argv[1:]))\n",
    "crash.py": "print('loading the model')\nraise SystemExit('no model named nothing:latest')\n",
    "silent.py": "print('done, but nothing recorded')\n",
    "slow.py": RECORDS + "record('slow', 'Slow thing', 'ran to the end')\n",
}
PLAN = (Bench("fast.py", ("--runs", "3"), 0.1), Bench("crash.py", (), 0.1), Bench("silent.py", (), 0.1),
        Bench("slow.py", (), 0.1))


@pytest.fixture
def bench_dir(tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    for name, text in SCRIPTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_one_run_writes_the_whole_file_and_reports_failures(bench_dir, tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    out.write_text("# old results\n\nMeasured 2020-01-01 on another machine.\n", encoding="utf-8")
    assert run_all.run(PLAN, out=out, bench_dir=bench_dir, logs=tmp_path / "logs") == 1
    text = out.read_text(encoding="utf-8")

    assert "another machine" not in text  # rewritten whole, not merged
    assert text.count("- CPU: ") == 1 and "xuetu commit: " in text and "- run: " in text
    assert "Measured" not in text  # no per-section machine line
    order = [text.index(f"<!-- {name}:start -->") for name in ("fast", "crash", "silent", "slow")]
    assert order == sorted(order)
    fast = text[order[0]:order[1]]
    assert "## Fast thing" in fast and "`benchmarks/fast.py --runs 3`" in fast and "| ours | 12.5 |" in fast
    assert "- flags: --runs 3" in fast
    crash = text[order[1]:order[2]]
    assert "**Failed: exited with status 1.**" in crash and "no model named nothing:latest" in crash
    assert "**Failed: finished without recording a section.**" in text[order[2]:order[3]]
    assert "## Slow thing" in text[order[3]:]  # a failure does not stop the benchmarks after it
    assert "| crash | `benchmarks/crash.py` |" in text and "**2 failed**: crash.py, silent.py" in text
    assert not list(tmp_path.glob("*.tmp"))
    assert (tmp_path / "logs" / "crash.log").read_text(encoding="utf-8").startswith("loading the model")

    terminal = capsys.readouterr().out
    assert "[1/4] fast.py … " in terminal and "[2/4] crash.py … " in terminal
    assert "FAILED: exited with status 1" in terminal


def test_a_script_run_alone_replaces_only_its_section_and_says_so(bench_dir, tmp_path, monkeypatch):
    out = tmp_path / "RESULTS.md"
    run_all.run(PLAN, out=out, bench_dir=bench_dir, logs=tmp_path / "logs")
    before = out.read_text(encoding="utf-8")
    monkeypatch.setattr(_record, "RESULTS", out)
    monkeypatch.delenv(_record.SECTION_ENV, raising=False)
    monkeypatch.setattr(sys, "argv", [str(bench_dir / "fast.py"), "--runs", "5"])

    _record.record("fast", "Fast thing", "| run | tokens/s |\n|---|---:|\n| ours | 13.0 |")
    after = out.read_text(encoding="utf-8")
    assert "| ours | 13.0 |" in after and "| ours | 12.5 |" not in after
    assert "*Measured alone (`benchmarks/fast.py --runs 5`) on " in after
    head = before[:before.index("<!-- fast:start -->")]
    assert after.startswith(head)  # the header and the other sections are as the run left them
    assert after[after.index("<!-- crash:start -->"):] == before[before.index("<!-- crash:start -->"):]


def test_a_benchmark_past_its_time_limit_is_stopped_with_the_processes_it_started(tmp_path, monkeypatch):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    pid_file = tmp_path / "server.pid"
    (folder / "hangs.py").write_text(
        "import subprocess, sys, time\n"
        "server = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(server.pid))\n"
        "print('serving', flush=True)\ntime.sleep(120)\n", encoding="utf-8")
    (folder / "after.py").write_text(RECORDS + "record('after', 'After', 'still ran')\n", encoding="utf-8")
    monkeypatch.setattr(run_all, "MIN_LIMIT_S", 2.0)
    out = tmp_path / "RESULTS.md"

    assert run_all.run((Bench("hangs.py", (), 0.01), Bench("after.py", (), 0.01)), out=out, bench_dir=folder,
                       logs=tmp_path / "logs") == 1
    text = out.read_text(encoding="utf-8")
    assert "**Failed: stopped at its time limit of 2s.**" in text and "serving" in text
    assert "## After" in text
    stat = Path(f"/proc/{pid_file.read_text()}/stat")  # the server the benchmark started went with it
    assert not stat.exists() or stat.read_text().split(") ")[1].startswith("Z")  # gone, or dead and not yet reaped


def test_a_gpu_section_measured_elsewhere_survives_a_cpu_run(bench_dir, tmp_path):
    out = tmp_path / "RESULTS.md"
    gpu = _record.section_block("gpu", "GPU: training and serving on a lent card", "*Measured alone on an H200.*\n\n"
                                "| 1 stream | 128 | 401.0 |")
    out.write_text(f"# old results\n\n{gpu}\n", encoding="utf-8")
    run_all.run(PLAN, out=out, bench_dir=bench_dir, logs=tmp_path / "logs")
    text = out.read_text(encoding="utf-8")
    assert "# old results" not in text and text.count(gpu) == 1  # rewritten whole, the GPU section carried over
    assert text.index("<!-- slow:end -->") < text.index("<!-- gpu:start -->")
