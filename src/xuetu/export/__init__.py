"""Export a stored model: merged Hugging Face folder, GGUF, LoRA GGUF, or an Ollama folder; and create one
from an Ollama Modelfile.

    export("facts", "gguf", quant="q8_0")      # formats.py: -> facts:q8_0 in the store, verified
    export("facts", "ollama", out="facts-ollama")
    create_from_modelfile("again", "facts-ollama/Modelfile")   # create.py: `xuetu create -f`

Where things are: formats.py (one export per format), create.py (`xuetu create -f Modelfile`),
verify.py (an export against its source), gguf.py / gguf_lora.py / gguf_vocab.py (GGUF writers),
merge.py (adapter merged into its base), modelfile.py and template.py (Ollama's Modelfile and template).
"""

from __future__ import annotations

from xuetu.export.create import create_from_modelfile
from xuetu.export.formats import FORMATS, Exported, default_name, export

__all__ = ["FORMATS", "Exported", "create_from_modelfile", "default_name", "export"]
