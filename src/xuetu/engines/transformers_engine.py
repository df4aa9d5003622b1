"""The transformers engine: any Hugging Face causal LM, plus PEFT LoRA adapters, on CPU or GPU.

It runs its own decode loop (KV cache, sampling, stop strings) instead of `model.generate`,
so it can stream exact token counts and, later, batch several requests.
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Iterator

from xuetu.engines import kv
from xuetu.engines.base import Chunk, GenerateOptions, Messages
from xuetu.engines.messages import check_messages
from xuetu.engines.sequence import SequenceState
from xuetu.errors import ContextTooLong, XuetuError
from xuetu.models.ref import ModelRef

INSTALL_HINT = "Install it with `pip install transformers torch`."
# End-of-turn tokens of common chat templates, in case a config names only the end-of-text token.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


def is_available() -> bool:
    return importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None


class TransformersEngine:
    name = "transformers"

    def __init__(self, ref: ModelRef, device: str | None = None, dtype: str | None = None, quant: str | None = None):
        import torch
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        from xuetu.engines import check_quant
        from xuetu.models.weights import causal_lm
        from xuetu.engines.quant import quantize_int8, weight_bytes
        from xuetu.models import resolve

        self.ref = ref
        self.quant = check_quant(quant)
        if quant == "int8" and ref.prompt_learning:
            raise XuetuError(f"{ref.name} is a prompt- or prefix-tuned adapter, which cannot be merged into INT8 weights",
                             "Run it without --quant, or quantise a LoRA adapter instead.")
        base = resolve(ref.base) if ref.base else ref
        if base.hf_dir is None and base.gguf_file is None:
            raise XuetuError(f"{base.name} has no weights the transformers engine can read")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if quant in ("fp16", "bf16"):
            dtype = {"fp16": "float16", "bf16": "bfloat16"}[quant]
        if dtype is None:
            dtype = "float32" if self.device == "cpu" else ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
        self.dtype = getattr(torch, dtype)
        src, extra = (base.hf_dir, {}) if base.hf_dir else (base.gguf_file.parent, {"gguf_file": base.gguf_file.name})
        hf_logging.disable_progress_bar()
        try:
            tok_src, tok_extra = src, extra
            if ref.adapter_dir is not None and (ref.adapter_dir / "tokenizer_config.json").is_file():
                tok_src, tok_extra = ref.adapter_dir, {}  # an adapter trained with a fallback chat template
            self.tokenizer = AutoTokenizer.from_pretrained(tok_src, **tok_extra)
            model = causal_lm(src, dtype=self.dtype, **extra)
            if ref.adapter_dir is not None:
                import warnings

                from peft import PeftModel

                # transformers 5 deprecates a name PEFT still calls; harmless, and noisy on every load
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                model = PeftModel.from_pretrained(model, ref.adapter_dir)
                if quant == "int8":  # int8 rows cannot take a LoRA delta at run time: fold it in first
                    model = model.merge_and_unload()
        finally:
            hf_logging.enable_progress_bar()
        if quant == "int8":
            quantize_int8(model)
        self.model = model.to(self.device).eval()
        self.weights_bytes = weight_bytes(self.model)  # measured after quantisation
        cfg = self.model.config
        self.context_length = int(getattr(cfg, "max_position_embeddings", 0) or 2048)
        self.stop_ids = self._end_tokens(getattr(self.model, "generation_config", None))

    def _end_tokens(self, gen_cfg) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(gen_cfg, "eos_token_id", None), self.tokenizer.eos_token_id):
            ids.update(source if isinstance(source, list) else [source] if source is not None else [])
        vocab = self.tokenizer.get_vocab()
        ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
        return ids

    # -- prompts ---------------------------------------------------------------------------------
    @property
    def chat_template(self) -> str | None:
        template = self.tokenizer.chat_template
        return template if isinstance(template, str) else None

    def encode(self, prompt: Messages | str | list[int], tools: list[dict] | None = None) -> list[int]:
        """Token ids of a plain prompt, of messages rendered with the chat template (and the tools, for templates
        that render them), or ids as given."""
        if isinstance(prompt, str):
            return list(self.tokenizer(prompt)["input_ids"])
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            return list(prompt)
        messages = check_messages(prompt)
        if not self.tokenizer.chat_template:
            raise XuetuError(f"{self.ref.name} has no chat template (it is a base model)",
                             "Send it plain text to continue instead of chat messages.")
        out = self.tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=True,
                                                 return_dict=True)
        ids = out["input_ids"]
        return list(ids[0] if ids and isinstance(ids[0], list) else ids)

    def count_tokens(self, prompt: Messages | str | list[int]) -> int:
        return len(self.encode(prompt))

    def budget(self, n_prompt: int, opts: GenerateOptions) -> int:
        """Tokens this answer may use; raises ContextTooLong when the prompt leaves no room."""
        if n_prompt >= self.context_length:
            raise ContextTooLong(f"the prompt is {n_prompt} tokens but {self.ref.name} holds {self.context_length}",
                                 "Shorten the conversation or the prompt.")
        return min(opts.max_tokens, self.context_length - n_prompt)

    def new_sequence(self, prompt: list[int], opts: GenerateOptions) -> SequenceState:
        return SequenceState(prompt, opts, self.tokenizer, self.stop_ids, self.budget(len(prompt), opts),
                             device=self.device, n_vocab=self.model.config.vocab_size)

    # -- generation ------------------------------------------------------------------------------
    def generate(self, prompt: Messages | str | list[int], options: GenerateOptions | None = None) -> Iterator[Chunk]:
        import torch

        opts = options or GenerateOptions.build(self.ref.params)
        ids = self.encode(prompt)
        if self.ref.prompt_learning:
            yield from self._generate_prompt_learning(ids, opts)
            return
        seq = self.new_sequence(ids, opts)
        with torch.inference_mode():
            step_ids = torch.tensor([ids], device=self.device)  # (1, T)
            past = None
            while not seq.done:
                result, past = kv.step(self.model, past, input_ids=step_ids)
                token = seq.pick(result.logits[0, -1, :].float())  # logits (1, T, vocab) -> (vocab,)
                chunk = seq.advance(token)
                if chunk is not None:
                    yield chunk
                step_ids = torch.tensor([[token]], device=self.device)  # (1, 1)

    def _generate_prompt_learning(self, ids: list[int], opts: GenerateOptions) -> Iterator[Chunk]:
        """Prompt/prefix tuning adapters add virtual tokens inside PEFT's forward, so their decoding goes
        through PEFT's own generate (on a thread, streaming token by token)."""
        import queue
        import threading

        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        import warnings

        warnings.filterwarnings("ignore", message="Position ids are not supported for parameter efficient tuning.*")
        if opts.format is not None:
            raise XuetuError("JSON output is not available for prompt- or prefix-tuned models",
                             "Use a LoRA adapter or the base model for constrained JSON.")
        seq = self.new_sequence(ids, opts)
        tokens: queue.Queue = queue.Queue()
        stop = threading.Event()

        class Streamer:
            first = True

            def put(self, value):
                if self.first:  # generate hands over the prompt first
                    self.first = False
                    return
                for t in value.reshape(-1).tolist():
                    tokens.put(t)

            def end(self):
                tokens.put(None)

        class Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

        if opts.seed is not None:
            torch.manual_seed(opts.seed)
        sampling = {"do_sample": True, "temperature": opts.temperature, "top_k": opts.top_k or None,
                    "top_p": opts.top_p} if opts.temperature > 0 else {"do_sample": False}
        inputs = torch.tensor([ids], device=self.device)
        errors = []

        def work():
            try:
                with torch.inference_mode():
                    self.model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                        max_new_tokens=seq.budget, repetition_penalty=opts.repeat_penalty,
                                        eos_token_id=sorted(self.stop_ids), pad_token_id=sorted(self.stop_ids)[0],
                                        streamer=Streamer(), stopping_criteria=StoppingCriteriaList([Stop()]),
                                        **sampling)
            except Exception as e:
                errors.append(e)
                tokens.put(None)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            for token in iter(tokens.get, None):
                chunk = seq.advance(token)
                if chunk is not None:
                    yield chunk
                if seq.done:
                    return
            if errors:
                raise errors[0]
            if not seq.done:  # generate stopped on an end token it did not hand over, or the budget
                yield seq._finish("stop" if len(seq.out) < seq.budget else "length", seq.stream.flush(seq.text))
        finally:
            stop.set()
            thread.join(timeout=60)

    def info(self) -> dict:
        return {"engine": self.name, "model": self.ref.name, "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."), "context_length": self.context_length,
                "adapter": self.ref.adapter_dir is not None, "quant": self.quant, "weights_bytes": self.weights_bytes}

    def close(self) -> None:
        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
