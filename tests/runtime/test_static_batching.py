"""The static-cache batch runner on the CPU: answers match the engine alone whoever runs beside them and whenever
they join, N joining prompts are one prefill forward, slots come back on cancellation, and the cache is sized
within a budget."""

from __future__ import annotations

import asyncio

import pytest

from xuetu.engines.base import GenerateOptions
from xuetu.errors import ContextTooLong, Unavailable
from xuetu.runtime.runner import GenRequest
from xuetu.runtime.static_batching import StaticBatchRunner, bucket

PROMPTS = ["The capital of France", "A token is a piece of text. LoRA adds small matrices", "大模型",
           "The capital of China is Beijing. The capital of France is Paris. A token",
           "Hello", "训练、微调、部署。学徒学习很快。"]


def load(ref):
    from xuetu import engines

    return engines.load(ref, engine="transformers")


def request(engine, prompt: str, max_tokens: int = 24, adapter: str | None = None) -> GenRequest:
    return GenRequest(engine.encode(prompt), GenerateOptions.build(temperature=0, max_tokens=max_tokens),
                      adapter=adapter)


def alone(engine, prompt: str, max_tokens: int = 24) -> str:
    opts = GenerateOptions.build(temperature=0, max_tokens=max_tokens)
    return "".join(c.text for c in engine.generate(engine.encode(prompt), opts))


async def collect(runner, req: GenRequest, submit: bool = True, started: asyncio.Event | None = None) -> str:
    """The request's whole answer; `started` is set at its first chunk."""
    req.loop, req.queue = asyncio.get_running_loop(), asyncio.Queue()
    if submit:
        runner.submit(req)
    text = ""
    while True:
        item = await req.queue.get()
        if isinstance(item, BaseException):
            raise item
        text += item.text
        if started is not None:
            started.set()
        if item.finish_reason is not None:
            return text


def submit_together(runner, reqs: list[GenRequest]) -> None:
    """Queue every request before the worker looks: they join in the same step (the condition's lock is
    reentrant, so submit can take it again)."""
    with runner._cv:
        for r in reqs:
            r.loop = asyncio.get_running_loop()
            r.queue = asyncio.Queue()
            runner.submit(r)


@pytest.fixture
def tiny_engines(tiny):
    runner = StaticBatchRunner(load(tiny), max_batch=4)
    yield runner, load(tiny)
    runner.close()


def test_answers_match_the_engine_alone_when_joining_at_different_times(tiny_engines):
    runner, reference = tiny_engines
    expected = [alone(reference, p) for p in PROMPTS]

    async def main():
        tasks, started = [], asyncio.Event()
        for p in PROMPTS:  # each joins once the previous one is decoding; six answers on four slots queue
            tasks.append(asyncio.create_task(collect(runner, request(runner.engine, p), started=started)))
            await started.wait()
            started = asyncio.Event()
        return await asyncio.gather(*tasks)

    got = asyncio.run(main())
    assert got == expected and all(expected)
    assert runner.peak_batch >= 2  # (a slot is freed just after its last chunk: not checked here)


def test_joining_prompts_are_prefilled_in_one_forward(tiny_engines):
    runner, reference = tiny_engines
    shapes = []
    hook = runner.model.register_forward_pre_hook(lambda m, a, kw: shapes.append(tuple(kw["input_ids"].shape)),
                                                  with_kwargs=True)

    async def main():
        reqs = [request(runner.engine, p, max_tokens=6) for p in PROMPTS[:4]]
        submit_together(runner, reqs)
        return await asyncio.gather(*[collect(runner, r, submit=False) for r in reqs])

    try:
        got = asyncio.run(main())
    finally:
        hook.remove()
    prefills = [s for s in shapes if s[1] > 1]
    longest = max(len(runner.engine.encode(p)) for p in PROMPTS[:4])
    assert prefills == [(4, longest)]  # one right-padded forward for all four
    assert all(s == (4, 1) for s in shapes[1:])  # then decode steps over the four slots
    assert got == [alone(reference, p, 6) for p in PROMPTS[:4]]


def test_cancellation_frees_the_slot(tiny_engines):
    runner, _ = tiny_engines

    async def main():
        long = request(runner.engine, PROMPTS[0], max_tokens=100)
        started = asyncio.Event()
        task = asyncio.create_task(collect(runner, long, started=started))
        await started.wait()
        long.cancelled.set()
        for _ in range(200):
            if runner.info()["busy_slots"] == 0:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        info, free = runner.info(), list(runner._free)
        return info, free, await collect(runner, request(runner.engine, PROMPTS[1], max_tokens=4))

    info, free, after = asyncio.run(main())
    assert info["busy_slots"] == 0 and free == [0, 1, 2, 3]
    assert after  # the freed slot answers the next request


def test_a_prompt_longer_than_a_slot_is_refused(tiny_engines):
    runner, _ = tiny_engines
    long = list(range(3, 3 + 40)) * 4  # 160 token ids; the tiny model holds 128

    async def main():
        return await collect(runner, GenRequest(long, GenerateOptions.build(temperature=0, max_tokens=4)))

    with pytest.raises(ContextTooLong) as e:
        asyncio.run(main())
    assert "160 tokens" in str(e.value) and "holds 128" in str(e.value)
    assert runner.info()["slot_context"] == 128 and runner.info()["busy_slots"] == 0


def test_the_cache_is_sized_within_the_budget(tiny):
    from xuetu.engines import static_kv

    engine = load(tiny)
    per_token = static_kv.bytes_per_token(engine.model.config, engine.dtype)
    assert per_token == 2 * 2 * 2 * 8 * 4  # k and v, 2 layers, 2 kv heads, head dim 8, fp32
    runner = StaticBatchRunner(engine, max_batch=16, kv_budget=3 * 128 * per_token + 5)
    try:  # room for three full slots of the model's 128 positions
        assert runner.info() == {"slots": 3, "slot_context": 128, "kv_cache_tokens": 384,
                                 "kv_cache_bytes": 384 * per_token, "busy_slots": 0}
        assert runner.kv.keys[0].shape == (3, 2, 128, 8)
    finally:
        runner.close()
    with pytest.raises(Unavailable) as e:
        StaticBatchRunner(load(tiny), kv_budget=100 * per_token)
    assert "--max-memory" in e.value.full() and "--max-batch" in e.value.full()
    assert static_kv.plan(8192, 1000, 16, 8 * 1024 * 1000) == (8, 1024)  # fewer slots before shorter ones
    assert static_kv.plan(8192, 1000, 4, None) == (4, 8192)


def test_buckets_keep_decode_shapes_few():
    assert [bucket(n, 16) for n in (1, 2, 3, 5, 9, 16)] == [1, 2, 4, 8, 16, 16]
    assert bucket(9, 12) == 12


def test_a_failed_compile_falls_back_to_eager(tiny_engines, caplog):
    runner, reference = tiny_engines

    def broken(*a, **kw):
        raise RuntimeError("no graphs here")

    runner._compiled = broken

    async def main():
        return await collect(runner, request(runner.engine, PROMPTS[0], max_tokens=8))

    assert asyncio.run(main()) == alone(reference, PROMPTS[0], 8)
    assert runner._compiled is None and "decoding eagerly" in caplog.text


def test_qwen2_with_grouped_query_attention(tmp_path, xuetu_home):
    from helpers.tiny import build_tiny_qwen2
    from xuetu import models

    ref = models.create("tiny-qwen:latest", build_tiny_qwen2(tmp_path / "qwen"), progress=False)
    runner, reference = StaticBatchRunner(load(ref), max_batch=4), load(ref)
    try:
        async def main():
            reqs = [request(runner.engine, p, max_tokens=16) for p in PROMPTS[:3]]
            submit_together(runner, reqs)
            return await asyncio.gather(*[collect(runner, r, submit=False) for r in reqs])

        assert asyncio.run(main()) == [alone(reference, p, 16) for p in PROMPTS[:3]]
    finally:
        runner.close()


def test_lora_rows_ride_the_static_cache(tiny, tmp_path):
    """Rows with different adapters (and none) in the same steps answer as each adapter does alone."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from xuetu import models

    for name, seed in (("tiny-lora:a", 1), ("tiny-lora:b", 2)):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(tiny.hf_dir)
        cfg = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
        get_peft_model(base, cfg).save_pretrained(tmp_path / name)
        models.create(name, tmp_path / name, base="tiny:latest", progress=False)
    runner = StaticBatchRunner(load(tiny), max_batch=4)
    try:
        for name in ("tiny-lora:a", "tiny-lora:b"):
            runner.add_adapter(name, str(models.resolve(name).adapter_dir))
        plan = [("tiny-lora:a", PROMPTS[0]), (None, PROMPTS[1]), ("tiny-lora:b", PROMPTS[2])]

        async def main():
            reqs = [request(runner.engine, p, max_tokens=12, adapter=a) for a, p in plan]
            submit_together(runner, reqs)
            return await asyncio.gather(*[collect(runner, r, submit=False) for r in reqs])

        got = asyncio.run(main())
    finally:
        runner.close()
    expected = [alone(load(models.resolve(a or "tiny:latest")), p, 12) for a, p in plan]
    assert got == expected and len(set(got)) == 3


def test_smollm2_answers_as_alone(smollm2):
    runner, reference = StaticBatchRunner(load(smollm2), max_batch=4, kv_budget=200_000_000), load(smollm2)
    questions = ["What is the capital of France?", "Name three colors.", "Count to five."]
    try:
        async def main():
            reqs = [request(runner.engine, [{"role": "user", "content": q}], max_tokens=16) for q in questions]
            submit_together(runner, reqs)
            return await asyncio.gather(*[collect(runner, r, submit=False) for r in reqs])

        got = asyncio.run(main())
    finally:
        runner.close()
    assert got == [alone(reference, [{"role": "user", "content": q}], 16) for q in questions]


def test_loading_picks_the_static_runner_within_the_memory_left(tiny, monkeypatch):
    from xuetu.runtime import loading
    from xuetu.runtime.batching import BatchRunner
    from xuetu.runtime.placement import place

    running = loading.load(place(tiny), max_batch=4)  # on a CPU the default is today's runner
    running.runner.close()
    assert type(running.runner) is BatchRunner
    monkeypatch.setenv("XUETU_STATIC_KV", "1")  # the default on CUDA
    running = loading.load(place(tiny), max_batch=4, memory_left=10**9)
    try:
        assert type(running.runner) is StaticBatchRunner and running.runner.info()["slots"] == 4
        assert running.size == running.encoder.info()["weights_bytes"] + running.runner.kv_bytes
        assert running.encoder.context_length == running.runner.max_len  # prompts are checked against a slot
    finally:
        running.runner.close()
    monkeypatch.setenv("XUETU_STATIC_KV", "0")
    running = loading.load(place(tiny), max_batch=4)
    running.runner.close()
    assert type(running.runner) is BatchRunner


def test_a_failed_prefill_fails_its_requests_and_keeps_its_slots(tiny_engines):
    runner, _ = tiny_engines
    hook = runner.model.register_forward_pre_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("out of memory")))

    async def main():
        return await collect(runner, request(runner.engine, PROMPTS[0], max_tokens=4))

    try:
        with pytest.raises(RuntimeError, match="out of memory"):
            asyncio.run(main())
    finally:
        hook.remove()
    assert runner._free == [0, 1, 2, 3]


def test_the_compiled_decode_path_answers_as_eager(tiny, monkeypatch):
    """torch.compile is stood in for by a recorder (no CUDA here): the runner warms every bucket on its worker,
    decodes through the compiled callable over the whole slot length, and answers as the engine alone."""
    import torch

    calls = []

    def fake_compile(fn, **kw):
        assert kw == {"mode": "reduce-overhead", "dynamic": False}

        def compiled(ids, positions, mask):
            calls.append((ids.shape[0], mask.shape[-1]))
            return fn(ids, positions, mask)
        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(torch._dynamo, "mark_static_address", lambda t: None)
    runner, reference = StaticBatchRunner(load(tiny), max_batch=4, compile=True), load(tiny)
    try:
        async def main():
            reqs = [request(runner.engine, p, max_tokens=10) for p in PROMPTS[:3]]
            submit_together(runner, reqs)
            return await asyncio.gather(*[collect(runner, r, submit=False) for r in reqs])

        got = asyncio.run(main())
    finally:
        runner.close()
    assert calls[:6] == [(1, 128), (1, 128), (2, 128), (2, 128), (4, 128), (4, 128)]  # warmed, two calls a bucket
    assert {b for b, _ in calls[6:]} == {4} and {w for _, w in calls} == {128}  # 3 rows ride the bucket of 4
    assert got == [alone(reference, p, 10) for p in PROMPTS[:3]]
