"""Prometheus metrics for /metrics, in a registry of the app's own (so tests can run many apps)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


KV_GAUGES = (  # KV caches of the llama.cpp slot runners (runtime/slots.py) and the static batch runners
    # (runtime/static_batching.py), summed over loaded models; prompt reuse is the slot runners' alone
    ("kv_cache_bytes", "xuetu_kv_cache_bytes", "Bytes of KV cache allocated by slot and static batch runners"),
    ("slots", "xuetu_kv_cache_slots", "Sequence slots of slot and static batch runners"),
    ("busy_slots", "xuetu_kv_cache_busy_slots", "Slots decoding an answer now"),
    ("prompt_tokens", "xuetu_kv_prompt_tokens", "Prompt tokens submitted to slot runners since they loaded"),
    ("cached_tokens", "xuetu_kv_cached_prompt_tokens", "Of them, found in the slot's own cache (not evaluated)"),
    ("shared_tokens", "xuetu_kv_shared_prompt_tokens", "Of them, shared from another slot's cache (not evaluated)"),
)


class Metrics:
    def __init__(self, manager):
        self.registry = reg = CollectorRegistry()
        ProcessCollector(registry=reg)  # process_resident_memory_bytes, cpu seconds, open fds
        self.requests = Counter("xuetu_requests_total", "HTTP requests by route and status", ["method", "route", "status"],
                                registry=reg)
        self.latency = Histogram("xuetu_request_duration_seconds", "Time to the last byte of the response", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=reg)
        self.ttft = Histogram("xuetu_time_to_first_token_seconds", "Time from request to first generated token",
                              ["model"], buckets=LATENCY_BUCKETS, registry=reg)
        self.prompt_tokens = Counter("xuetu_prompt_tokens_total", "Prompt tokens processed", ["model"], registry=reg)
        self.generated_tokens = Counter("xuetu_generated_tokens_total", "Tokens generated", ["model"], registry=reg)
        self.decode_rate = Histogram("xuetu_decode_tokens_per_second", "Decode speed of each generation", ["model"],
                                     buckets=RATE_BUCKETS, registry=reg)
        self.guard_events = Counter("xuetu_guard_events_total", "Safety-guard findings by category, action and "
                                    "direction (input, output, retrieval)", ["category", "action", "direction"],
                                    registry=reg)
        queue = Gauge("xuetu_queue_depth", "Requests waiting or running in all models", registry=reg)
        queue.set_function(manager.queue_depth)
        loaded = Gauge("xuetu_loaded_models", "Models resident in memory", registry=reg)
        loaded.set_function(lambda: len(manager.loaded))
        weights = Gauge("xuetu_loaded_model_bytes", "Bytes of weights resident", registry=reg)
        weights.set_function(lambda: sum(m.size for m in manager.loaded.values()))
        for key, name, what in KV_GAUGES:
            gauge = Gauge(name, what, registry=reg)
            gauge.set_function(lambda key=key: manager.kv_cache().get(key, 0))
        rss = Gauge("xuetu_process_rss_bytes", "Resident set size of the server process", registry=reg)
        rss.set_function(_rss)
        if _gpu():
            import torch

            gpu = Gauge("xuetu_gpu_memory_bytes", "GPU memory allocated by torch", registry=reg)
            gpu.set_function(torch.cuda.memory_allocated)

    def observe_generation(self, model: str, prompt: int, completion: int, ttft: float | None, decode_s: float) -> None:
        self.prompt_tokens.labels(model).inc(prompt)
        self.generated_tokens.labels(model).inc(completion)
        if ttft is not None:
            self.ttft.labels(model).observe(ttft)
        if completion > 1 and decode_s > 0:
            self.decode_rate.labels(model).observe((completion - 1) / decode_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _rss() -> float:
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
