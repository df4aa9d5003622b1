"""The runtime layer: what every app needs to run models, between the engines and the apps.

    placement.py  which weights, on which engine, behind which runner (adapters ride their base)
    loading.py    load a placed model and start its runner
    runner.py     SerialRunner, ConcurrentRunner, GenRequest and `stream` (chunks onto an asyncio queue)
    batching.py   BatchRunner: continuous batching on transformers, many LoRA adapters over one base
    manager.py    ModelManager: resident models, keep-alive, caps; `Lease`, held with `async with`/`with`
    options.py    the one mapping from a request's sampling fields to GenerateOptions
    settings.py   what the runtime needs from its caller (RuntimeSettings) and keep-alive durations

`xuetu serve`, `xuetu eval` and the CLI use it; none of them imports another to run a model.
"""
