"""Checkpoints that survive kill -9 at any moment.

A checkpoint is written into a temporary folder, flushed to disk, renamed to `step-NNNNNN`, and only
then named in `latest` (itself replaced atomically). So `latest` always names a complete checkpoint:
the trainable weights, optimizer, scheduler, RNG states, and where in the data the run was.

This module writes and reads files; the weights and optimizer state it is given are already whole
(gathered from every process under FSDP: see full_state.py), and only the main process calls `save`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from xuetu.home import atomic_write_text

KEEP = 2


@dataclass
class Checkpoint:
    """What `read` finds in a checkpoint folder; the RNG states are restored as it is read."""

    weights: dict[str, torch.Tensor]
    optimizer: dict
    optimizer_keys: str  # how the optimizer state is keyed (full_state.BY_POSITION or BY_NAME)
    scheduler: dict
    state: dict  # counters, fingerprint and step


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(run_dir: Path, step: int, weights: dict[str, torch.Tensor], optimizer: dict, optimizer_keys: str,
         scheduler, state: dict) -> Path:
    """Write a checkpoint of `weights` (the trainable ones) and `optimizer` (a state dict keyed as `optimizer_keys`
    says), and name it in `latest`."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    save_file(weights, tmp / "trainable.safetensors")
    torch.save({"optimizer": optimizer, "keys": optimizer_keys, "scheduler": scheduler.state_dict()}, tmp / "optim.pt")
    torch.save({"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2), encoding="utf-8")
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(root / "latest", final.name + "\n")
    for old in sorted(p for p in root.glob("step-*") if p != final)[:-(KEEP - 1) or None]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):  # left by a run killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    return final


def latest(run_dir: Path) -> Path | None:
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = run_dir / "checkpoints" / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "state.json").is_file() else None


def read(path: Path) -> Checkpoint:
    """A checkpoint's contents; its RNG states are restored (this process continues the saved random streams)."""
    opt = torch.load(path / "optim.pt", weights_only=False)
    rng = torch.load(path / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    # "position": checkpoints from before optimizer state could be keyed by name held torch's own state_dict.
    return Checkpoint(load_file(path / "trainable.safetensors"), opt["optimizer"], opt.get("keys", "position"),
                      opt["scheduler"], json.loads((path / "state.json").read_text(encoding="utf-8")))
