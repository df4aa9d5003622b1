"""The transformers engine: any Hugging Face causal LM, plus PEFT LoRA adapters, on CPU or GPU.

It runs its own decode loop (KV cache, sampling, stop strings) instead of `model.generate`,
so it can stream exact token counts and, later, batch several requests.
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Iterator

from xuetu.engines.base import Chunk, GenerateOptions, Messages
from xuetu.engines.messages import check_messages
from xuetu.engines.text import StopStringStream
from xuetu.errors import ContextTooLong, XuetuError
from xuetu.models.ref import ModelRef

INSTALL_HINT = "Install it with `pip install transformers torch`."
REPEAT_WINDOW = 64  # tokens the repetition penalty looks back over, as in llama.cpp
# End-of-turn tokens of common chat templates, in case a config names only the end-of-text token.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


def is_available() -> bool:
    return importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None


class TransformersEngine:
    name = "transformers"

    def __init__(self, ref: ModelRef, device: str | None = None, dtype: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from xuetu.models import resolve

        self.ref = ref
        base = resolve(ref.base) if ref.base else ref
        if base.hf_dir is None and base.gguf_file is None:
            raise XuetuError(f"{base.name} has no weights the transformers engine can read")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = "float32" if self.device == "cpu" else ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
        self.dtype = getattr(torch, dtype)
        src, extra = (base.hf_dir, {}) if base.hf_dir else (base.gguf_file.parent, {"gguf_file": base.gguf_file.name})
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(src, **extra)
            model = AutoModelForCausalLM.from_pretrained(src, dtype=self.dtype, **extra)
            if ref.adapter_dir is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, ref.adapter_dir)
        finally:
            hf_logging.enable_progress_bar()
        self.model = model.to(self.device).eval()
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
    def encode(self, messages_or_prompt: Messages | str) -> list[int]:
        """Token ids of a plain prompt, or of messages rendered with the model's chat template."""
        if isinstance(messages_or_prompt, str):
            return list(self.tokenizer(messages_or_prompt)["input_ids"])
        messages = check_messages(messages_or_prompt)
        if not self.tokenizer.chat_template:
            raise XuetuError(f"{self.ref.name} has no chat template (it is a base model)",
                             "Send it plain text to continue instead of chat messages.")
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        ids = out["input_ids"]
        return list(ids[0] if ids and isinstance(ids[0], list) else ids)

    def count_tokens(self, messages_or_prompt: Messages | str) -> int:
        return len(self.encode(messages_or_prompt))

    # -- generation ------------------------------------------------------------------------------
    def generate(self, messages_or_prompt: Messages | str, options: GenerateOptions | None = None) -> Iterator[Chunk]:
        import torch

        from xuetu.engines.sampling import apply_repeat_penalty, sample_next

        opts = options or GenerateOptions.build(self.ref.params)
        prompt = self.encode(messages_or_prompt)
        n_prompt = len(prompt)
        if n_prompt >= self.context_length:
            raise ContextTooLong(f"the prompt is {n_prompt} tokens but {self.ref.name} holds {self.context_length}",
                                 "Shorten the conversation or the prompt.")
        budget = min(opts.max_tokens, self.context_length - n_prompt)
        generator = None
        if opts.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(opts.seed)
        stream = StopStringStream(opts.stop)
        out: list[int] = []
        text = ""
        recent = list(prompt[-REPEAT_WINDOW:])
        finish = "length"
        with torch.inference_mode():
            step_ids = torch.tensor([prompt], device=self.device)  # (1, T)
            past = None
            for _ in range(budget):
                result = self.model(input_ids=step_ids, past_key_values=past, use_cache=True)
                past = result.past_key_values
                logits = result.logits[:, -1, :].float()  # (1, vocab)
                logits = apply_repeat_penalty(logits, torch.tensor([recent], device=self.device), opts.repeat_penalty)
                next_id = int(sample_next(logits, opts, generator)[0])
                if next_id in self.stop_ids:
                    finish = "stop"
                    break
                out.append(next_id)
                recent = (recent + [next_id])[-REPEAT_WINDOW:]
                text = self.tokenizer.decode(out, skip_special_tokens=True)
                delta = stream.push(text)
                if stream.stopped:
                    yield Chunk(delta, n_prompt, len(out), "stop")
                    return
                if delta:
                    yield Chunk(delta, n_prompt, len(out))
                step_ids = torch.tensor([[next_id]], device=self.device)  # (1, 1)
        tail = stream.flush(text)
        yield Chunk(tail, n_prompt, len(out), "stop" if stream.stopped else finish)

    def info(self) -> dict:
        return {"engine": self.name, "model": self.ref.name, "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."), "context_length": self.context_length,
                "adapter": self.ref.adapter_dir is not None}

    def close(self) -> None:
        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
