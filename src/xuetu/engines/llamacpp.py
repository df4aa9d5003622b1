"""The llama.cpp engine (llama-cpp-python): GGUF models, the fast path on a CPU.

The prompt is rendered with the chat template stored in the GGUF itself, and the decode
loop is ours (over `Llama.generate`) so stop strings, partial UTF-8 and token counts are
handled exactly as in the transformers engine.
"""

from __future__ import annotations

import codecs
import importlib.util
import os
import random
from collections.abc import Iterator

from xuetu.engines.base import Chunk, GenerateOptions, Messages
from xuetu.engines.messages import check_messages
from xuetu.engines.text import StopStringStream
from xuetu.errors import ContextTooLong, XuetuError
from xuetu.models.ref import ModelRef

INSTALL_HINT = "Install it with `pip install llama-cpp-python` (it compiles llama.cpp; a few minutes)."
DEFAULT_CTX = 8192


def is_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


class LlamaCppEngine:
    name = "llama.cpp"

    def __init__(self, ref: ModelRef, n_ctx: int | None = None, threads: int | None = None,
                 n_gpu_layers: int = 0, own_ctx: int | None = None):
        """`own_ctx` sizes this engine's own context (its `generate`) below `n_ctx`: the slot runner decodes in a
        context of its own, so a served engine keeps a small one."""
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if ref.adapter_dir is not None:
            raise XuetuError(f"{ref.name} is a LoRA adapter in safetensors; llama.cpp runs GGUF files",
                             "Use --engine transformers.")
        if ref.gguf_file is None:
            raise XuetuError(f"{ref.name} has no GGUF file for llama.cpp", "Use --engine transformers.")
        self.ref = ref
        from xuetu.models.facts import gguf_facts

        trained = int(gguf_facts(ref.gguf_file).get("context_length") or DEFAULT_CTX)
        self.threads = threads or os.cpu_count() or 1
        context_length = n_ctx or min(trained, DEFAULT_CTX)
        self.llm = Llama(model_path=str(ref.gguf_file), n_ctx=min(own_ctx or context_length, context_length),
                         n_threads=self.threads, n_threads_batch=self.threads, n_gpu_layers=n_gpu_layers,
                         lora_path=str(ref.gguf_adapter) if ref.gguf_adapter else None, verbose=False)
        self.context_length = context_length if own_ctx else self.llm.n_ctx()
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.chat_template: str | None = template or None
        self._ll_tokenizer = None
        self.formatter = None
        if template:
            self.formatter = Jinja2ChatFormatter(template=template, eos_token=self._piece(self.llm.token_eos()),
                                                 bos_token=self._piece(self.llm.token_bos()))

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    # -- prompts ---------------------------------------------------------------------------------
    def encode(self, messages_or_prompt: Messages | str | list[int], tools: list[dict] | None = None) -> list[int]:
        if isinstance(messages_or_prompt, list) and messages_or_prompt and all(
                isinstance(t, int) for t in messages_or_prompt):
            return list(messages_or_prompt)
        if isinstance(messages_or_prompt, str):
            return self.llm.tokenize(messages_or_prompt.encode("utf-8"), add_bos=True, special=False)
        messages = check_messages(messages_or_prompt)
        if self.formatter is None:
            raise XuetuError(f"{self.ref.name} has no chat template (it is a base model)",
                             "Send it plain text to continue instead of chat messages.")
        prompt = self.formatter(messages=messages, tools=tools).prompt
        # The template writes its own special tokens, as transformers' apply_chat_template assumes.
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, messages_or_prompt: Messages | str | list[int]) -> int:
        return len(self.encode(messages_or_prompt))

    # -- generation ------------------------------------------------------------------------------
    def generate(self, messages_or_prompt: Messages | str, options: GenerateOptions | None = None) -> Iterator[Chunk]:
        import llama_cpp

        opts = options or GenerateOptions.build(self.ref.params)
        prompt = self.encode(messages_or_prompt)
        n_prompt = len(prompt)
        limit = self.llm.n_ctx()  # the context_length, or less on a served engine (own_ctx)
        if n_prompt >= limit:
            raise ContextTooLong(f"the prompt is {n_prompt} tokens but {self.ref.name} holds {limit}",
                                 "Shorten the conversation or the prompt.")
        budget = min(opts.max_tokens, limit - n_prompt)
        self.llm.set_seed(opts.seed if opts.seed is not None else random.randrange(2**31))
        if opts.seed is not None:
            # Reusing a cached prompt prefix re-evaluates its last token alone, which gives slightly
            # different logits than the full prompt pass; a seeded answer must not depend on history.
            self.llm.reset()
        vocab = self.llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream = StopStringStream(opts.stop)
        text = ""
        n_out = 0
        finish = "length"
        constraint = self._constraint(opts.format)
        tokens = self.llm.generate(prompt, temp=opts.temperature, top_k=opts.top_k, top_p=opts.top_p, min_p=0.0,
                                   repeat_penalty=opts.repeat_penalty, reset=True,
                                   logits_processor=[constraint] if constraint else None)
        for token in tokens:
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            if constraint:
                constraint.accept(token)
            n_out += 1
            text += decoder.decode(self.llm.detokenize([token]))
            delta = stream.push(text)
            if stream.stopped:
                yield Chunk(delta, n_prompt, n_out, "stop")
                return
            if delta:
                yield Chunk(delta, n_prompt, n_out)
            if n_out >= budget:
                break
        text += decoder.decode(b"", final=True)
        tail = stream.flush(text)
        yield Chunk(tail, n_prompt, n_out, "stop" if stream.stopped else finish)

    def _constraint(self, fmt):
        """llguidance over the GGUF's vocabulary, for "json" or a JSON schema; None for free text."""
        if fmt is None:
            return None
        from xuetu.engines.structured import LlamaCppConstraint

        if self._ll_tokenizer is None:  # about a second to build, so once per engine
            import llama_cpp
            from llguidance.llamacpp import lltokenizer_from_vocab

            eog = [t for t in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, t)]
            self._ll_tokenizer = lltokenizer_from_vocab(self.llm._model.vocab, eos_token=eog or None)
        return LlamaCppConstraint(self._ll_tokenizer, fmt, self.llm.n_vocab())

    def info(self) -> dict:
        return {"engine": self.name, "model": self.ref.name, "device": "cpu", "threads": self.threads,
                "context_length": self.context_length, "adapter": self.ref.gguf_adapter is not None}

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()
