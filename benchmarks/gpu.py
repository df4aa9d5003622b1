"""The GPU check: LoRA training against HF Trainer + PEFT, and serving 1 and 16 streams, on a CUDA card.

It runs on a machine with no network. The real weights are too large to send there, so it builds a model
of the embedded architecture (SmolLM2-135M: its config and tokenizer, random bf16 weights) and adds it to a
store of its own. Training is benchmarks/train.py's pair on the same data (bf16 on both sides, each side in
its own process); serving goes through the transformers engine's runner (the static KV cache runner, as on any
CUDA card), in process, with greedy answers.
It writes a "GPU" section into benchmarks/RESULTS.md.

Three steps:

    .venv/bin/python benchmarks/gpu.py --prepare      # here: .gpu/model (config, tokenizer) and .gpu/wheels
    python3 benchmarks/gpu.py                         # there, carrying .gpu: installs the wheels, measures
    .venv/bin/python benchmarks/gpu.py --dry-run      # on the CPU at tiny sizes (the test suite runs this)

The wheels are the packages xuetu needs that the lent machine's image lacks, at the versions installed here,
for Python 3.12 on x86-64 Linux; they are installed with --no-index into a folder of their own, so nothing is
fetched there. The figures are the machine's own: compare each ratio only within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "src"))

PREPARED = ROOT / ".gpu"
NAME = "gpu-check:135m"
# xuetu's needs that the lent machine's image does not hold (device/KINDS.md lists what it has), and the versions
# of the training stack the check is meant to measure.
WHEELS = ["transformers", "tokenizers", "huggingface-hub", "safetensors", "peft", "accelerate", "kernels", "gguf",
          "llguidance", "jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "orjson", "fastapi",
          "starlette", "pydantic", "pydantic-core", "annotated-types", "typing-inspection", "uvicorn", "langid",
          "hf-xet"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "manylinux_2_24_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64"]
SITE = Path(tempfile.gettempdir()) / "xuetu-gpu-site"


# -- prepare (here) and install (there) ----------------------------------------------------------------------

def prepare(model_dir: Path) -> None:
    """Copy the embedded model's config and tokenizer (no weights) and download the wheels, into .gpu/."""
    out = PREPARED / "model"
    out.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy2(f, out / f.name)
    wheels = PREPARED / "wheels"
    wheels.mkdir(exist_ok=True)
    for name in WHEELS:
        spec = f"{name}=={metadata.version(name)}"
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.12", "--implementation", "cp", "-d", str(wheels), spec]
        for p in PLATFORMS:
            cmd += ["--platform", p]
        if subprocess.run(cmd).returncode != 0:  # published as source only (langid): a pure-Python wheel from it
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), spec],
                           check=True)
    size = sum(f.stat().st_size for f in PREPARED.rglob("*") if f.is_file())
    print(f"prepared {PREPARED}: {len(list(wheels.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB in all; "
          f"carry .gpu and run `python3 benchmarks/gpu.py` there")


def install_wheels() -> None:
    """Install the carried wheels into a folder of their own and run this script again with it on the path."""
    wheels = sorted((PREPARED / "wheels").glob("*.whl"))
    if not wheels or os.environ.get("XUETU_GPU_SITE"):
        return
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--upgrade", "--target", str(SITE), *map(str, wheels)], check=True)
    env = {**os.environ, "XUETU_GPU_SITE": "1",
           "PYTHONPATH": os.pathsep.join([str(SITE), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


# -- the model ------------------------------------------------------------------------------------------------

def build_model(source: Path, folder: Path, tiny: bool) -> None:
    """A model of `source`'s architecture with random weights (bf16 on a GPU), and its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source)
    if tiny:  # the same architecture, small enough for a CPU test
        config.num_hidden_layers, config.hidden_size, config.intermediate_size = 2, 64, 128
        config.num_attention_heads, config.num_key_value_heads, config.head_dim = 4, 2, 16
    torch.manual_seed(0)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    for f in source.iterdir():
        if f.suffix != ".safetensors" and f.name != "config.json":
            shutil.copy2(f, folder / f.name)


# -- training -------------------------------------------------------------------------------------------------

def train_side(which: str, data: str, precision: str) -> dict:
    """One side of the training pair, in its own process (peak memory is its own)."""
    out = subprocess.run([sys.executable, __file__, "--child", which, data, precision], capture_output=True,
                         text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"the {which} side failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(line[7:])


def child(which: str, data: str, precision: str) -> None:
    import torch

    import train

    torch.manual_seed(0)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    stats = train.run_xuetu(data, precision, NAME) if which == "xuetu" else train.run_trainer(data, precision, NAME)
    stats["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    stats["peak_rss_mb"] = train.peak_rss_mb()
    print("RESULT " + json.dumps(stats))


def training(records: int, precision: str) -> dict:
    import train

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sft.jsonl"
        train.make_data(data, records)
        return {which: train_side(which, str(data), precision) for which in ("trainer", "xuetu")}


# -- serving --------------------------------------------------------------------------------------------------

async def _answer(runner, prompt: list[int], tokens: int) -> tuple[int, float, float]:
    """(tokens generated, seconds to the first, seconds in all) of one greedy answer."""
    from xuetu.engines.base import GenerateOptions
    from xuetu.runtime.runner import GenRequest, stream

    start, first, n = time.perf_counter(), None, 0
    options = GenerateOptions(temperature=0, max_tokens=tokens, repeat_penalty=1.0)
    async for chunk in stream(runner, GenRequest(prompt=prompt, options=options)):
        first = first or time.perf_counter()
        n = chunk.completion_tokens
    end = time.perf_counter()
    return n, (first or end) - start, end - start


async def _level(runner, prompts: list[list[int]], tokens: int) -> dict:
    start = time.perf_counter()
    answers = await asyncio.gather(*[_answer(runner, p, tokens) for p in prompts])
    wall = time.perf_counter() - start
    made = sum(a[0] for a in answers)
    single = [(a[0] - 1) / (a[2] - a[1]) for a in answers if a[0] > 1 and a[2] > a[1]]
    return {"streams": len(prompts), "tokens": made, "aggregate": made / wall,
            "per_stream": sum(single) / max(len(single), 1), "ttft": sorted(a[1] for a in answers)[len(answers) // 2]}


def serving(tokens: int, streams: list[int]) -> tuple[list[dict], str]:
    from xuetu import models
    from xuetu.runtime.loading import load
    from xuetu.runtime.placement import place

    running = load(place(models.resolve(NAME), "transformers"), max_batch=max(streams))
    engine = running.encoder
    try:
        prompts = [engine.encode([{"role": "user", "content": f"Write a long essay about topic {i}."}])
                   for i in range(max(streams))]
        asyncio.run(_level(running.runner, prompts[:1], 4))  # warm-up: kernels, allocator, any compiled graphs
        rows = [asyncio.run(_level(running.runner, prompts[:n], tokens)) for n in streams]
        info = running.runner.info() if hasattr(running.runner, "info") else {}
        compiled = getattr(running.runner, "_compiled", None) is not None
        runner = type(running.runner).__name__ + (f" ({info['slots']} slots of {info['slot_context']} tokens, "
                                                  f"{'CUDA graphs' if compiled else 'eager'})" if info else "")
        return rows, runner
    finally:
        running.runner.close()


# -- report ---------------------------------------------------------------------------------------------------

def device_line() -> str:
    import torch

    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return f"{p.name}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}"
    return f"CPU (dry run); torch {torch.__version__}"


def report(train_rows: dict, serve_rows: list[dict], runner: str, dry_run: bool, precision: str) -> str:
    t, x = train_rows["trainer"], train_rows["xuetu"]
    speed = lambda r: r["tokens"] / r["seconds"]  # noqa: E731
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("transformers", "peft", "accelerate"))
    lines = [f"Device: {device_line()}; {versions}." + (" **Dry run on the CPU at tiny sizes: these figures say "
                                                          "nothing about a GPU.**" if dry_run else ""),
             "",
             f"Model: the embedded architecture (SmolLM2-135M{', shrunk to 2 layers' if dry_run else ''}) with "
             f"random weights. LoRA r=16 on all linear layers, {precision}, the same data on both sides.", "",
             "| training | tokens/s | peak GPU memory (MB) | final loss |", "|---|---:|---:|---:|",
             f"| HF Trainer + PEFT (baseline) | {speed(t):,.0f} | {t['peak_gpu_mb']:,.0f} | {t['final_loss']:.3f} |",
             f"| xuetu | {speed(x):,.0f} | {x['peak_gpu_mb']:,.0f} | {x['final_loss']:.3f} |", "",
             f"xuetu / baseline: **{speed(x) / speed(t):.2f}x** tokens/s (target: at least 2x); peak GPU memory "
             + (f"{x['peak_gpu_mb'] / t['peak_gpu_mb']:.2f}x" if t["peak_gpu_mb"] else "n/a on a CPU")
             + " (target: at most 1x).", "",
             f"Serving: the transformers engine behind {runner}, greedy answers of up to "
             f"{max(r['tokens'] // r['streams'] for r in serve_rows)} tokens, in process.", "",
             "| serving | tokens | aggregate tokens/s | per stream tokens/s | "
             "time to first token (s, median) |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['streams']} stream{'s' if r['streams'] > 1 else ''} | {r['tokens']} | {r['aggregate']:,.1f} | "
              f"{r['per_stream']:,.1f} | {r['ttft']:.3f} |" for r in serve_rows]
    lines += ["", "Targets on an H200-class GPU: at least 400 tokens/s for one stream, at least 4,000 in aggregate "
              "at 16 streams."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepare", action="store_true", help="here: write .gpu/ (model config, tokenizer, wheels)")
    ap.add_argument("--dry-run", action="store_true", help="on the CPU at tiny sizes")
    ap.add_argument("--results", type=Path, default=None, help="where the section goes (default: RESULTS.md)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.prepare:
        from xuetu import models

        models.pull("smollm2:135m", progress=False)
        return prepare(models.resolve("smollm2:135m").hf_dir)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("no CUDA device: run this on a GPU machine, or with --dry-run on the CPU")
    if not args.dry_run:
        install_wheels()
    source = PREPARED / "model"
    if not (source / "config.json").is_file():
        if not args.dry_run:
            sys.exit(f"{source} is missing: run `benchmarks/gpu.py --prepare` here and carry .gpu to the GPU machine")
        from xuetu import models

        models.pull("smollm2:135m", progress=False)
        source = models.resolve("smollm2:135m").hf_dir
    if args.dry_run:  # the runner a GPU gets by default (runtime/static_batching.py), so the dry run takes its path
        os.environ.setdefault("XUETU_STATIC_KV", "1")
    home = Path(tempfile.mkdtemp(prefix="xuetu-gpu-home-"))
    os.environ["XUETU_HOME"] = str(home)  # a store of its own: the user's is left as it was
    try:
        from xuetu import models

        build_model(source, home / "random", tiny=args.dry_run)
        models.create(NAME, home / "random", progress=False)
        precision = "bf16" if torch.cuda.is_available() else "fp32"
        train_rows = training(8 if args.dry_run else 192, precision)
        serve_rows, runner = serving(8 if args.dry_run else 128, [1, 4] if args.dry_run else [1, 16])
    finally:
        shutil.rmtree(home, ignore_errors=True)
    body = report(train_rows, serve_rows, runner, args.dry_run, precision)
    print(body)
    if args.results is not None:
        args.results.write_text(body + "\n", encoding="utf-8")
    elif not args.dry_run:
        from _record import record

        record("gpu", "GPU: training and serving on a lent card", body)


if __name__ == "__main__":
    main()
