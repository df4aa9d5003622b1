"""Fine-tunes started from the server: each one is a `xuetu finetune` child process whose output goes
to the run's train.log, so the server stays responsive and a crash in training cannot take it down.

Uploaded datasets live in XUETU_HOME/datasets/. A run's status on disk is written by the training
process itself; `status()` also notices a run whose process died without saying so ("interrupted").
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from xuetu.errors import Conflict, NotFound, XuetuError
from xuetu.home import inside, xuetu_home
from xuetu.train.runs import Run, get_run, now, run_dir

DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
ACTIVE = ("starting", "running", "evaluating")
_CHILDREN: dict[int, subprocess.Popen] = {}
"""Training processes this process started, so they are reaped (no zombies) and cancel can wait for them."""
_START_LOCK = threading.Lock()


def datasets_root() -> Path:
    root = xuetu_home() / "datasets"
    root.mkdir(parents=True, exist_ok=True)
    return root


def dataset_path(name: str) -> Path:
    if not re.fullmatch(r"[\w\u4e00-\u9fff][\w.\- \u4e00-\u9fff]{0,120}", name) or not name.lower().endswith(DATASET_SUFFIXES):
        raise XuetuError(f"invalid dataset name {name!r}",
                         f"Use a plain file name ending in {', '.join(DATASET_SUFFIXES)}, e.g. my-qa.jsonl.")
    return inside(datasets_root(), datasets_root() / name)


def describe_dataset(path: Path) -> dict:
    """Read every record (so a malformed file fails now, not in training) and summarise it."""
    import xuetu.data

    records = list(xuetu.data.load(path))
    if not records:
        raise XuetuError(f"{path.name} holds no records")
    chats = [r for r in records if not r.is_text]
    if not chats:
        raise XuetuError(f"{path.name} holds raw text only; fine-tuning needs questions and answers",
                         "Use question/answer, instruction/output (Alpaca) or messages (OpenAI) records.")
    formats = sorted({r.meta.get("format", "?") for r in records})
    return {"object": "dataset", "name": path.name, "records": len(records), "format": ",".join(formats),
            "size": path.stat().st_size}


def incoming_file(name: str) -> Path:
    """A fresh file to receive an upload of dataset `name` into, beside the datasets (so it moves in atomically)
    and with the same suffix (so it is read as the format it claims)."""
    path = dataset_path(name)
    incoming = datasets_root() / ".incoming"
    incoming.mkdir(exist_ok=True)
    return incoming / f"{uuid.uuid4().hex[:12]}-{path.name}"


def save_dataset(name: str, data: bytes | Path) -> dict:
    """Validate an upload (its bytes, or a file from incoming_file) and move it in atomically; a file that does not
    read is removed again."""
    path = dataset_path(name)
    if isinstance(data, Path):
        tmp = data
    else:
        tmp = incoming_file(name)
        tmp.write_bytes(data)
    try:
        info = describe_dataset(tmp)
    except XuetuError as e:
        tmp.unlink(missing_ok=True)
        raise XuetuError(e.message.replace(str(tmp), path.name).replace(tmp.name, path.name), e.hint) from None
    os.replace(tmp, path)
    return {**info, "name": path.name}


def list_datasets() -> list[dict]:
    out = []
    for path in sorted(datasets_root().iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(DATASET_SUFFIXES):
            out.append({"object": "dataset", "name": path.name, "size": path.stat().st_size})
    return out


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child of this process is a zombie until reaped: not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def status(info: dict) -> str:
    """The stored status, except that an active run whose process is gone is 'interrupted'."""
    state = info.get("status", "unknown")
    if state in ACTIVE and info.get("pid") and not _alive(info["pid"]):
        return "interrupted"
    return state


def active_run() -> str | None:
    from xuetu.train.runs import list_runs

    for r in list_runs():
        if status(r) in ACTIVE and _alive(r.get("pid")):
            return r["run"]
    return None


def start_finetune(data: str, model: str = "smollm2:135m", out: str | None = None, max_steps: int | None = None,
                   epochs: float | None = None, lr: float | None = None, steps_cap: int | None = None,
                   minutes_cap: float | None = None) -> dict:
    """Start `xuetu finetune` in the background on an uploaded dataset; one at a time per machine.

    `steps_cap` refuses a larger max_steps; after `minutes_cap` minutes the job is stopped. The new model never
    replaces its base or any stored model (Conflict).
    """
    if steps_cap is not None and max_steps is not None and max_steps > steps_cap:
        raise XuetuError(f"max_steps {max_steps} is above this server's cap of {steps_cap} steps",
                         f"Ask for at most {steps_cap}, or run `xuetu finetune` on the server.")
    with _START_LOCK:  # the check and the spawn are one step: parallel requests start one job
        if (busy := active_run()) is not None:
            raise Conflict(f"a fine-tune is already running (run {busy})", "Wait for it to finish or cancel it first.")
        run, proc = _spawn(data, model, out, max_steps, epochs, lr)
    if minutes_cap is not None:
        timer = threading.Timer(minutes_cap * 60, _stop_overdue, (run.path.name, proc.pid, minutes_cap))
        timer.daemon = True
        timer.start()
    return {"object": "run", "run": run.path.name, "out": run.info["out"], "status": "starting", "pid": proc.pid}


def _spawn(data: str, model: str, out: str | None, max_steps, epochs, lr) -> tuple[Run, subprocess.Popen]:
    from xuetu import models
    from xuetu.models import parse_name, store

    path = dataset_path(data)
    if not path.is_file():
        raise NotFound(f"no dataset named {data!r}", "Upload it first: PUT /v1/datasets/FILENAME.")
    base = models.resolve(model)
    out = str(parse_name(out or f"{base.name.split(':')[0].split('/')[-1]}-{path.stem}"))
    if out == base.name or store.get(out) is not None:
        raise Conflict(f"model {out!r} already exists" + (" (it is the base model)" if out == base.name else ""),
                       "Name a new model in `out`; a fine-tune never replaces a stored model.")
    run = Run(run_dir(out))
    cmd = [sys.executable, "-m", "xuetu", "finetune", "--model", base.name, "--data", str(path), "--out", out,
           "--method", "lora"]
    for key, value in (("max_steps", max_steps), ("epochs", epochs), ("lr", lr)):
        if value is not None:
            cmd += ["--set", f"{key}={value}"]
    log = open(run.path / "train.log", "ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "2"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    log.close()
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            del _CHILDREN[pid]
    _CHILDREN[proc.pid] = proc
    run.update(kind="finetune", status="starting", out=out, base=base.name, method="lora", pid=proc.pid,
               dataset=path.name, started_at=now(), error=None)
    return run, proc


def _stop_overdue(name: str, pid: int, minutes: float) -> None:
    """The wall-time cap: stop the run if that same process is still training."""
    run = get_run(name)
    if run.info.get("pid") != pid or status(run.info) not in ACTIVE:
        return
    _stop(run, status="failed", error=f"stopped after {minutes:g} minutes, this server's --max-train-minutes")


def cancel(name: str) -> dict:
    run = get_run(name)
    if status(run.info) not in ACTIVE:
        raise Conflict(f"run {run.path.name} is not running (it is {status(run.info)})")
    _stop(run, status="cancelled")
    return {"object": "run", "run": run.path.name, "status": "cancelled"}


def _stop(run: Run, **final) -> None:
    """End a run's training process tree, then record `final` (its status and why)."""
    pid = run.info.get("pid")
    run.update(**final)  # first, so a reader never sees the dead process as "interrupted"
    if pid and _alive(pid):
        os.killpg(os.getpgid(pid), signal.SIGTERM)  # its own session: the whole training process tree
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                child.wait()
    run.update(**final, finished_at=now())


def log_tail(name: str, lines: int = 40) -> str:
    path = get_run(name).path / "train.log"
    if not path.is_file():
        return ""
    text = path.read_bytes()[-65536:].decode("utf-8", "replace")
    # progress bars redraw with carriage returns: keep the last state of each line
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.splitlines()[-lines:])
