"""One export per format: a merged Hugging Face folder, a GGUF, a LoRA GGUF over its base, or an Ollama folder.

    export("facts", "gguf", quant="q8_0")      # -> facts:q8_0 in the store, verified, runs on llama.cpp
    export("facts", "ollama", out="facts-ollama")

Each export is staged, verified against its source (unless verify=False) and only then installed in
the store under a new name, so `xuetu run` and `xuetu serve` use it at once; a failed verification
installs nothing and says what differed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from xuetu.errors import XuetuError
from xuetu.export.create import create_from_modelfile
from xuetu.export.staging import check_name_free, link_file
from xuetu.notify import say

FORMATS = ("hf", "gguf", "gguf-lora", "ollama")


@dataclass
class Exported:
    name: str | None
    """The new model in the store (None when nothing new was stored)."""
    files: list[Path]
    """What was written outside the store (--out), if anything."""
    report: object | None = None


def default_name(name: str, suffix: str) -> str:
    from xuetu.models.names import parse_name

    p = parse_name(name)
    tag = suffix if p.tag == "latest" else f"{p.tag}-{suffix}"
    return f"{p.namespace + '/' if p.namespace else ''}{p.model}:{tag}"


def _manifest(ref, formats: dict, fmt: str, quant: str | None, report) -> dict:
    m = {"kind": ref.kind, "formats": formats, "params": ref.params,
         "source": {"type": "export", "id": ref.name, "format": fmt, "quant": quant}}
    if ref.system:
        m["system"] = ref.system
    if report is not None:
        m["verification"] = report.to_dict()
    return m


def _verified(ref, gguf_file: Path, adapter: Path | None, verify: bool, progress: bool):
    if not verify:
        return None
    from xuetu.export.verify import verify as run

    report = run(ref, gguf_file, adapter, progress=progress)
    if not report.ok:
        raise XuetuError("the export does not behave like its source, so it was not added to the store",
                         report.text().rstrip() + "\nFor a 4-bit export try --quant q4_1 or q8_0; "
                         "--no-verify keeps a failing export anyway.")
    return report


def export(name: str, fmt: str, quant: str | None = None, out: str | Path | None = None, verify: bool = True,
           new_name: str | None = None, progress: bool = True) -> Exported:
    from xuetu import models
    from xuetu.export.gguf import QUANTS

    if fmt not in FORMATS:
        raise XuetuError(f"unknown export format {fmt!r}", f"Choose one of: {', '.join(FORMATS)}.")
    if quant is not None and quant not in QUANTS:
        raise XuetuError(f"unknown quantisation {quant!r}", f"Choose one of: {', '.join(QUANTS)}.")
    if fmt == "hf" and quant is not None:
        raise XuetuError("--quant applies to GGUF formats", "Drop --quant for --format hf (it writes fp32 safetensors).")
    ref = models.resolve(name)
    if ref.kind == "embedding":
        raise XuetuError(f"{ref.name} is an embedding model", "Export covers chat and base language models.")
    lora = ref.adapter_dir is not None
    if ref.adapter_dir is not None and ref.adapter_type != "LORA":
        raise XuetuError(f"{ref.name} is a {ref.adapter_type} adapter; GGUF and merged exports need LoRA",
                         "Prompt and prefix tuning models run with `xuetu run` / `xuetu serve` on transformers.")
    if fmt == "gguf-lora" and not lora:
        raise XuetuError(f"{ref.name} is not a LoRA adapter", "Use --format gguf for a whole model.")
    out = Path(out).expanduser() if out else None
    if fmt == "hf":
        return _export_hf(ref, out, new_name, lora)
    if fmt == "gguf":
        return _export_gguf(ref, quant or "f16", out, verify, new_name or default_name(ref.name, quant or "f16"),
                            progress)
    if fmt == "gguf-lora":
        return _export_lora(ref, quant, out, verify, new_name or default_name(ref.name, "gguf"), progress)
    return _export_ollama(ref, quant, out or Path(f"{ref.name.replace('/', '-').replace(':', '-')}-ollama"),
                          verify, new_name, progress)


def _export_hf(ref, out: Path | None, new_name: str | None, lora: bool) -> Exported:
    from xuetu.export.merge import write_hf
    from xuetu.models import store

    if not lora:
        if out is None:
            raise XuetuError(f"{ref.name} is already a whole Hugging Face model in the store",
                             f"Give --out PATH to write a copy of it there: xuetu export {ref.name} --format hf --out DIR")
        write_hf(ref, out)
        return Exported(None, [out])
    name = new_name or default_name(ref.name, "merged")
    check_name_free(name)
    with store.staging() as tmp:
        write_hf(ref, tmp / "hf")
        installed = store.install(name, tmp, _manifest(ref, {"hf": "hf"}, "hf", None, None))
    files = []
    if out is not None:
        shutil.copytree(installed.hf_dir, out, dirs_exist_ok=True)
        files.append(out)
    return Exported(installed.name, files)


def _gguf_of(ref, quant: str, dest: Path, progress: bool) -> Path:
    """A GGUF of `ref` (merged first if it is an adapter) at `dest`."""
    from xuetu.export.gguf import write_gguf
    from xuetu.export.merge import write_hf
    from xuetu.models import store

    if ref.adapter_dir is None:
        if ref.hf_dir is None:
            raise XuetuError(f"{ref.name} has no Hugging Face weights to convert",
                             "It is a GGUF already; `xuetu cp` copies it under another name.")
        return write_gguf(ref.hf_dir, dest, quant, progress=progress)
    with store.staging() as tmp:
        if progress:
            say(f"merging the adapter of {ref.name} into {ref.base}")
        write_hf(ref, tmp / "merged")
        return write_gguf(tmp / "merged", dest, quant, progress=progress)


def _export_gguf(ref, quant, out, verify, name, progress) -> Exported:
    from xuetu.models import store

    check_name_free(name)
    with store.staging() as tmp:
        gguf_file = _gguf_of(ref, quant, tmp / "gguf" / "model.gguf", progress)
        report = _verified(ref, gguf_file, None, verify, progress)
        installed = store.install(name, tmp, _manifest(ref, {"gguf": "gguf/model.gguf"}, "gguf", quant, report))
    files = []
    if out is not None:
        target = out / f"{name.replace('/', '-').replace(':', '-')}.gguf" if out.is_dir() else out
        link_file(installed.gguf_file, target)
        files.append(target)
    return Exported(installed.name, files, report)


def _lora_files(ref, quant: str | None, folder: Path, progress: bool) -> tuple[Path, Path]:
    """The base GGUF (the store's own when no quant is asked for, else written) and the adapter GGUF."""
    from xuetu import models
    from xuetu.export.gguf import write_gguf
    from xuetu.export.gguf_lora import write_gguf_lora

    base = models.resolve(ref.base)
    if base.hf_dir is None:
        raise XuetuError(f"{base.name} has no Hugging Face folder to read the architecture from",
                         f"Pull it again: xuetu pull {base.name}")
    base_file = folder / "model.gguf"
    if quant is None and base.gguf_file is not None:
        link_file(base.gguf_file, base_file)
    else:
        write_gguf(base.hf_dir, base_file, quant or "f16", progress=progress)
    adapter = write_gguf_lora(ref.adapter_dir, base.hf_dir, folder / "adapter.gguf")
    return base_file, adapter


def _export_lora(ref, quant, out, verify, name, progress) -> Exported:
    from xuetu.models import store

    check_name_free(name)
    with store.staging() as tmp:
        base_file, adapter = _lora_files(ref, quant, tmp / "gguf", progress)
        report = _verified(ref, base_file, adapter, verify, progress)
        formats = {"gguf": "gguf/model.gguf", "gguf-lora": "gguf/adapter.gguf"}
        installed = store.install(name, tmp, _manifest(ref, formats, "gguf-lora", quant, report))
    files = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        link_file(installed.gguf_adapter, out / "adapter.gguf")
        files.append(out / "adapter.gguf")
    return Exported(installed.name, files, report)


def _export_ollama(ref, quant, out: Path, verify, new_name, progress) -> Exported:
    from transformers import AutoTokenizer

    from xuetu import __version__, models
    from xuetu.export import modelfile
    from xuetu.export.merge import tokenizer_source
    from xuetu.export.template import go_template, read_wrappers, stop_strings

    if out.exists() and any(out.iterdir()):
        raise XuetuError(f"{out} exists and is not empty", "Choose another --out folder, or empty this one.")
    name = new_name or default_name(ref.name, "ollama")
    check_name_free(name)  # before any file is written
    base = models.resolve(ref.base) if ref.base else ref
    tok = AutoTokenizer.from_pretrained(tokenizer_source(ref, base))
    mf = modelfile.Modelfile()
    if tok.chat_template:
        wrappers = read_wrappers(lambda m, g: tok.apply_chat_template(m, tokenize=False, add_generation_prompt=g))
        mf.template = go_template(wrappers)
        mf.system = ref.system or wrappers.default_system
        mf.parameters["stop"] = stop_strings(wrappers, list(tok.all_special_tokens))
    elif ref.system:
        mf.system = ref.system
    for key, value in ref.params.items():
        ollama_key = {"max_tokens": "num_predict"}.get(key, key)
        if ollama_key in modelfile.PARAMETERS and value is not None:
            if key == "stop":
                mf.parameters["stop"] = list(dict.fromkeys(mf.parameters.get("stop", []) + list(value)))
            else:
                mf.parameters[ollama_key] = value
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if ref.adapter_dir is not None:
            base_file, adapter = _lora_files(ref, quant, tmp, progress)
            mf.from_, mf.adapters = "./model.gguf", ["./adapter.gguf"]
        else:
            base_file, adapter = _gguf_of(ref, quant or "f16", tmp / "model.gguf", progress), None
            mf.from_ = "./model.gguf"
        report = _verified(ref, base_file, adapter, verify, progress)
        (tmp / "Modelfile").write_text(mf.text(f"Modelfile for {ref.name}, written by xuetu {__version__}.\n"
                                               f"ollama create {ref.name.split(':')[0].split('/')[-1]} -f Modelfile"),
                                       encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    created = create_from_modelfile(name, out / "Modelfile", extra={"source": {"type": "export", "id": ref.name,
                                                                               "format": "ollama", "quant": quant}})
    return Exported(created.name, [out], report)
