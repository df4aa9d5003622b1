"""The llama.cpp slot runner on the real embedded model: many answers per decode step, prefix caching, per-answer
sampling, cancellation and a bounded KV cache."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from xuetu.engines.base import GenerateOptions
from xuetu.errors import ContextTooLong, Unavailable
from xuetu.runtime.runner import GenRequest, stream
from xuetu.runtime.slots import MIN_SLOT_CTX, SlotRunner, plan_memory

QUESTIONS = ["What is the capital of France?", "Name three colors.", "Count to five.", "Write a haiku about rain.",
             "What is 2+2?", "Who wrote Hamlet?", "Say hello in Chinese.", "Describe a cat."]
SYSTEM = {"role": "system", "content": "You are a patient teacher for beginners. Answer in plain words, briefly, "
                                       "and never invent facts you are not sure of."}


@pytest.fixture(scope="module")
def engine(embedded_home):
    from helpers.env import home_env
    from xuetu import engines, models

    with home_env(embedded_home):
        eng = engines.load(models.resolve("smollm2:135m"), engine="llama.cpp", own_ctx=256)
    yield eng


@pytest.fixture
def runner(engine):
    r = SlotRunner(engine, slots=8, kv_budget=400_000_000)
    yield r
    r.close_slots()


def request(engine, messages, **opts) -> GenRequest:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return GenRequest(engine.encode(messages), GenerateOptions.build(**{"temperature": 0, "max_tokens": 32, **opts}))


async def answer(runner, req: GenRequest) -> tuple[str, object]:
    text, last = "", None
    async for chunk in stream(runner, req):
        text, last = text + chunk.text, chunk
    return text, last


def test_a_batch_of_eight_answers_as_one_at_a_time(engine, runner):
    async def main():
        alone = [await answer(runner, request(engine, q)) for q in QUESTIONS]
        together = await asyncio.gather(*[answer(runner, request(engine, q)) for q in QUESTIONS])
        return alone, together

    alone, together = asyncio.run(main())
    assert runner.peak_batch == 8  # all eight were decoded in the same steps
    assert [t for t, _ in together] == [t for t, _ in alone]
    assert all(t for t, _ in alone)
    assert all(last.finish_reason in ("stop", "length") and last.completion_tokens > 0 for _, last in together)


def test_the_next_turn_evaluates_only_its_new_tokens(engine, runner):
    turn1 = [SYSTEM, {"role": "user", "content": "What is a token?"}]

    async def main():
        first, _ = await answer(runner, request(engine, turn1))
        before = dict(runner.stats)
        turn2 = turn1 + [{"role": "assistant", "content": first}, {"role": "user", "content": "And a vocabulary?"}]
        second, last = await answer(runner, request(engine, turn2))
        return before, turn2, second, last

    before, turn2, second, last = asyncio.run(main())
    reused = runner.stats["cached_tokens"] - before["cached_tokens"]
    new = last.prompt_tokens - reused
    assert reused >= len(engine.encode(turn1)) and new < 20, (reused, new)
    # the cache changes nothing: a cold runner answers the second turn the same
    cold = SlotRunner(engine, slots=1, kv_budget=200_000_000)
    try:
        assert asyncio.run(answer(cold, request(engine, turn2)))[0] == second
        assert cold.stats["cached_tokens"] == 0
    finally:
        cold.close_slots()


def test_a_shared_system_prompt_is_evaluated_once(engine, runner):
    async def main():
        await answer(runner, request(engine, [SYSTEM, {"role": "user", "content": QUESTIONS[0]}]))
        return await asyncio.gather(*[answer(runner, request(engine, [SYSTEM, {"role": "user", "content": q}]))
                                      for q in QUESTIONS[1:4]])

    asyncio.run(main())
    system_tokens = len(engine.encode([SYSTEM]))
    reused = runner.stats["cached_tokens"] + runner.stats["shared_tokens"]
    assert reused >= 3 * (system_tokens - 5)  # each later request took the preamble from a slot


def test_seeded_sampling_repeats_whatever_ran_before_or_beside(engine, runner):
    opts = {"temperature": 0.9, "seed": 1234, "max_tokens": 24}
    q = [SYSTEM, {"role": "user", "content": "Write a one-line poem about tea."}]

    async def main():
        first, _ = await answer(runner, request(engine, q, **opts))
        noise = [answer(runner, request(engine, x, temperature=1.0)) for x in QUESTIONS[:5]]
        results = await asyncio.gather(answer(runner, request(engine, q, **opts)), *noise)
        other_seed, _ = await answer(runner, request(engine, q, **{**opts, "seed": 99}))
        return first, results[0][0], other_seed

    first, again, other = asyncio.run(main())
    assert first == again
    assert other != first


def test_sampling_settings_and_formats_are_per_answer(engine, runner):
    async def main():
        greedy = answer(runner, request(engine, QUESTIONS[0]))
        hot = answer(runner, request(engine, QUESTIONS[0], temperature=1.5, top_k=0, top_p=1.0, repeat_penalty=1.0,
                                     max_tokens=24, seed=5))
        json_answer = answer(runner, request(engine, "Give me a JSON object with a field name.", format="json",
                                             max_tokens=40))
        stopped = answer(runner, request(engine, QUESTIONS[0], stop=["Paris"], max_tokens=40))
        alone, _ = await answer(runner, request(engine, QUESTIONS[0]))
        return alone, await asyncio.gather(greedy, hot, json_answer, stopped)

    alone, ((g, _), (h, _), (j, jl), (s, sl)) = asyncio.run(main())
    assert g == alone  # a sampled neighbour does not change a greedy answer
    assert h != g
    if jl.finish_reason == "stop":
        assert isinstance(json.loads(j), dict)
    else:  # cut by max_tokens: still a JSON prefix, never free text
        assert j.lstrip().startswith("{")
    assert "Paris" in alone and s == alone[:alone.index("Paris")] and sl.finish_reason == "stop"


def test_cancelling_frees_the_slot_at_once(engine):
    runner = SlotRunner(engine, slots=1, kv_budget=200_000_000)
    try:
        long = request(engine, "Tell me a very long story about a dragon.", max_tokens=2000, repeat_penalty=1.3,
                       temperature=0.7, seed=1)

        async def main():
            got = []
            async for chunk in stream(runner, long):
                got.append(chunk)
                if len(got) == 3:
                    break  # the client went away: stream() sets cancelled
            started = time.perf_counter()
            text, last = await answer(runner, request(engine, QUESTIONS[4], max_tokens=8))
            return time.perf_counter() - started, text, last

        waited, text, last = asyncio.run(main())
        assert text and last.completion_tokens <= 8
        assert runner.info()["busy_slots"] == 0
        assert runner.depth == 0
    finally:
        runner.close_slots()


def test_a_prompt_longer_than_a_slot_is_refused(engine):
    runner = SlotRunner(engine, slots=2, kv_budget=2 * MIN_SLOT_CTX * 23_040 + 1)
    try:
        assert runner.context_length == MIN_SLOT_CTX and len(runner.slots) == 2
        too_long = GenRequest(list(range(100, 100 + MIN_SLOT_CTX)), GenerateOptions(max_tokens=4))
        with pytest.raises(ContextTooLong, match=f"holds {MIN_SLOT_CTX}"):
            asyncio.run(answer(runner, too_long))
        text, _ = asyncio.run(answer(runner, request(engine, QUESTIONS[0], max_tokens=4)))
        assert text  # the refusal cost nothing
    finally:
        runner.close_slots()


def test_the_kv_cache_is_sized_within_the_memory_budget():
    per_token = 23_040  # SmolLM2-135M: 30 layers x 3 KV heads x 64 x (K, V) x 2 bytes
    assert plan_memory(8192, per_token, 16, None) == (16, 4096)
    assert plan_memory(8192, per_token, 4, None) == (4, 8192)
    slots, ctx = plan_memory(8192, per_token, 16, 100_000_000)  # 4340 tokens: two slots of 2170, cut to 2048
    assert (slots, ctx) == (2, 2048) and slots * ctx * per_token <= 100_000_000
    with pytest.raises(Unavailable, match="--max-memory"):
        plan_memory(8192, per_token, 16, 10_000_000)


def test_many_requests_queue_and_all_finish(engine):
    runner = SlotRunner(engine, slots=2, kv_budget=200_000_000, max_queue=40)
    try:
        async def main():
            return await asyncio.gather(*[answer(runner, request(engine, q, max_tokens=6)) for q in QUESTIONS * 2])

        results = asyncio.run(main())
        assert len(results) == 16 and all(last.finish_reason for _, last in results)
        assert runner.peak_batch == 2
    finally:
        runner.close_slots()


def test_close_stops_the_worker(engine):
    runner = SlotRunner(engine, slots=1, kv_budget=200_000_000)
    runner.close_slots()
    assert not runner._thread.is_alive()
