"""LoRA adapters as GGUF, Ollama folders, Modelfiles, and the exports in the store, on real models."""

from __future__ import annotations

import numpy as np
import pytest

from xuetu import engines, models
from xuetu.engines.base import GenerateOptions
from xuetu.errors import XuetuError
from xuetu.export import create_from_modelfile, export
from xuetu.export import modelfile as mf

GREEDY = GenerateOptions(temperature=0.0, max_tokens=16, repeat_penalty=1.0)
HELLO = [{"role": "user", "content": "Name the capital of France."}]


def answer(name: str, engine: str = "auto") -> str:
    eng = engines.load(name, engine=engine)
    try:
        return "".join(c.text for c in eng.generate(HELLO, GREEDY))
    finally:
        eng.close()


def test_lora_gguf_over_the_embedded_model(smollm2_home, smollm2_lora_dir):
    """The adapter changes what the model says, and llama.cpp with the GGUF adapter says what transformers says."""
    from llama_cpp import Llama

    from xuetu.export.verify import TEXT, load_source

    models.create("facts:latest", smollm2_lora_dir, base="smollm2:135m", progress=False)
    result = export("facts", "gguf-lora", quant="f16", progress=False)
    ref = models.resolve(result.name)
    assert result.name == "facts:gguf" and ref.gguf_adapter.is_file() and ref.gguf_file.is_file()
    assert result.report.ok and result.report.precision == "F16", result.report.text()
    model, tok = load_source(models.resolve("facts"))
    ids = tok(TEXT, add_special_tokens=False).input_ids
    import torch

    with torch.no_grad():
        tuned = model(torch.tensor([ids])).logits[0].numpy()
    scores = {}
    for label, lora in (("with", str(ref.gguf_adapter)), ("without", None)):
        llm = Llama(model_path=str(ref.gguf_file), lora_path=lora, logits_all=True, n_ctx=512, verbose=False)
        llm.eval(ids)
        scores[label] = np.asarray(llm.scores[:len(ids)])
        llm.close()
    assert np.abs(scores["with"] - tuned).max() < 0.5  # f16 rounding only
    assert np.abs(scores["without"] - tuned).max() > 1.0  # the adapter really is applied
    eng = engines.load(result.name)
    assert eng.name == "llama.cpp" and eng.info()["adapter"] is True
    # served, the model decodes in a slot context of its own (runtime/slots.py): the adapter is set on it too
    from xuetu.engines.llamacpp_slots import SlotContext

    slots = SlotContext(eng, 2, 1024)
    assert slots.decode([(t, i, 1, i == len(ids) - 1) for i, t in enumerate(ids)]) == 0
    assert np.abs(slots.logits(len(ids) - 1) - tuned[-1]).max() < 0.5
    slots.close()
    eng.close()
    with pytest.raises(XuetuError, match="only the llama.cpp engine applies"):
        engines.load(result.name, engine="transformers")


@pytest.mark.slow
def test_export_of_a_lora_model_to_gguf_merges_it(smollm2_home, smollm2_lora_dir, tmp_path):
    models.create("facts:latest", smollm2_lora_dir, base="smollm2:135m", progress=False)
    result = export("facts", "gguf", quant="q8_0", out=tmp_path, progress=False)
    assert result.name == "facts:q8_0" and result.report.ok, result.report.text()
    assert result.files == [tmp_path / "facts-q8_0.gguf"] and result.files[0].stat().st_size > 100e6
    assert answer("facts:q8_0")  # runs on llama.cpp at once
    hf = export("facts", "hf", progress=False)
    merged = models.resolve(hf.name)
    assert hf.name == "facts:merged" and (merged.hf_dir / "model.safetensors").is_file()
    assert (merged.hf_dir / "chat_template.jinja").is_file() or "chat_template" in \
        (merged.hf_dir / "tokenizer_config.json").read_text()
    assert answer("facts:merged", engine="transformers") == answer("facts", engine="transformers")


@pytest.mark.slow
def test_ollama_folder_for_a_lora_model(smollm2_home, smollm2_lora_dir, tmp_path):
    models.create("facts:latest", smollm2_lora_dir, base="smollm2:135m", progress=False)
    out = tmp_path / "facts-ollama"
    result = export("facts", "ollama", out=out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "adapter.gguf", "model.gguf"]
    text = (out / "Modelfile").read_text()
    parsed = mf.parse(text)
    assert parsed.from_ == "./model.gguf" and parsed.adapters == ["./adapter.gguf"]
    assert parsed.template.startswith("{{ range .Messages }}") and "{{ .Content }}<|im_end|>\n" in parsed.template
    assert parsed.parameters["stop"] == ["<|im_start|>", "<|im_end|>"]
    assert parsed.system.startswith("You are a helpful AI assistant named SmolLM")  # the template's own default
    # the Modelfile builds a model (as `xuetu create -f` does) that runs on llama.cpp with the adapter
    ref = models.resolve(result.name)
    assert ref.gguf_adapter is not None and ref.params["stop"] == ["<|im_start|>", "<|im_end|>"]
    assert ref.system == parsed.system and ref.manifest["ollama_template"] == parsed.template
    rebuilt = create_from_modelfile("again:latest", out / "Modelfile")
    assert rebuilt.gguf_adapter.stat().st_ino == ref.gguf_adapter.stat().st_ino  # hard links, no copies
    assert answer("again") == answer(result.name)
    with pytest.raises(XuetuError, match="not empty"):
        export("facts", "ollama", out=out, progress=False)


def test_ollama_template_reproduces_the_jinja_template(tiny_dir):
    from transformers import AutoTokenizer

    from xuetu.export.template import CHECKS, go_template, read_wrappers

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    render = lambda m, g: tok.apply_chat_template(m, tokenize=False, add_generation_prompt=g)  # noqa: E731
    w = read_wrappers(render)
    assert w.default_system is None and all(w.render(c) == render(c, True) for c in CHECKS)
    assert go_template(w).endswith("{{ end }}{{ end }}<|im_start|>assistant\n")
    # a template that treats the first user message unlike the others cannot be an Ollama template
    odd = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% if not loop.last %}</s>{% endif %}"
           "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    tok.chat_template = odd
    with pytest.raises(XuetuError, match="--format gguf"):
        read_wrappers(render)


def test_modelfile_parse_write_and_errors(tmp_path):
    text = ('# a comment\nFROM ./m.gguf\nADAPTER ./a.gguf\nTEMPLATE """{{ range .Messages }}{{ .Content }}\n'
            '{{ end }}"""\nSYSTEM """Be\nbrief."""\nPARAMETER temperature 0.3\nPARAMETER stop "<|im_end|>"\n'
            'PARAMETER stop "User:"\nparameter num_ctx 4096\nMESSAGE user "hi"\n')
    parsed = mf.parse(text)
    assert parsed.from_ == "./m.gguf" and parsed.adapters == ["./a.gguf"] and parsed.system == "Be\nbrief."
    assert parsed.parameters == {"temperature": 0.3, "stop": ["<|im_end|>", "User:"], "num_ctx": 4096}
    assert parsed.params() == {"temperature": 0.3, "stop": ["<|im_end|>", "User:"]}
    assert parsed.messages == [{"role": "user", "content": "hi"}]
    again = mf.parse(parsed.text("round trip"))
    assert (again.template, again.system, again.parameters) == (parsed.template, parsed.system, parsed.parameters)
    for bad, match in [("FROM x\nPARAMETER temperature hot\n", "line 2: temperature must be a number"),
                       ("FROM x\nPARAMETER warmth 1\n", "line 2: unknown parameter 'warmth'"),
                       ("FROM x\nSYSTEM \"\"\"never closed\n", "line 2"),
                       ("SYSTEM hi\n", "no FROM line"), ("FROM x\nBOGUS 1\n", "line 2: unknown instruction")]:
        with pytest.raises(XuetuError, match=match):
            mf.parse(bad)
    (tmp_path / "Modelfile").write_text("FROM ./missing.gguf\n")
    with pytest.raises(XuetuError, match="does not exist"):
        create_from_modelfile("x:latest", tmp_path / "Modelfile")


def test_bad_exports_are_refused_clearly(tiny, tmp_path):
    with pytest.raises(XuetuError, match="unknown export format"):
        export("tiny", "onnx")
    with pytest.raises(XuetuError, match="not a LoRA adapter"):
        export("tiny", "gguf-lora")
    with pytest.raises(XuetuError, match="already a whole Hugging Face model"):
        export("tiny", "hf")
    with pytest.raises(XuetuError, match="not found"):
        export("nosuch", "gguf")
    export("tiny", "gguf", progress=False)
    with pytest.raises(XuetuError, match="already exists"):
        export("tiny", "gguf", progress=False)


def test_cli_export_create_and_run(tiny, tmp_path):
    from click.testing import CliRunner

    from xuetu.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["export", "tiny", "--format", "ollama", "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 0, res.output
    assert "exported tiny as tiny:ollama" in res.output and "ollama create tiny -f Modelfile" in res.output
    res = runner.invoke(main, ["create", "mine", "-f", str(tmp_path / "o" / "Modelfile")])
    assert res.exit_code == 0 and "created mine:latest" in res.output, res.output
    res = runner.invoke(main, ["run", "mine", "hello", "--temperature", "0", "-n", "8"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["export", "tiny", "--format", "gguf", "--quant", "q3"])
    assert res.exit_code == 2 and "q8_0" in res.output
    res = runner.invoke(main, ["create", "x"])
    assert res.exit_code == 2 and "either --from PATH or -f Modelfile" in res.output


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_every_format_round_trips_on_tiny_lora_models(arch, tiny_dir, qwen_dir, tmp_path):
    """hf, gguf, gguf-lora and ollama exports of a LoRA over a tiny Llama (q/k rows permuted) and Qwen2 (not)."""
    from helpers.tiny import build_lora

    base_dir = tiny_dir if arch == "llama" else qwen_dir
    models.create("tiny:latest", base_dir, progress=False)
    models.create("tuned:latest", build_lora(base_dir, tmp_path / "lora", scale=0.2), base="tiny:latest",
                  progress=False)
    tuned = answer("tuned", engine="transformers")
    assert tuned != answer("tiny", engine="transformers")  # the adapter matters
    for fmt, quant in (("hf", None), ("gguf", "f32"), ("gguf-lora", "f32"), ("ollama", "f32")):  # f32: no ties flip
        out = tmp_path / fmt if fmt == "ollama" else None
        result = export("tuned", fmt, quant=quant, out=out, progress=False)
        assert result.report is None if fmt == "hf" else result.report.ok, result.report and result.report.text()
        engine = "transformers" if fmt == "hf" else "llama.cpp"
        assert answer(result.name, engine=engine) == tuned, fmt


def test_exports_are_served_at_once(tiny_dir, xuetu_home, tmp_path):
    """A GGUF LoRA export, served by a real `xuetu serve`, answers the openai and ollama SDKs on llama.cpp."""
    import ollama
    from openai import OpenAI

    from helpers.server import ServerProcess
    from helpers.tiny import build_lora

    models.create("tiny:latest", tiny_dir, progress=False)
    models.create("tuned:latest", build_lora(tiny_dir, tmp_path / "lora", scale=0.2), base="tiny:latest",
                  progress=False)
    name = export("tuned", "gguf-lora", quant="f32", progress=False).name
    want = answer(name)
    server = ServerProcess(xuetu_home).wait()
    try:
        chat = OpenAI(base_url=server.url + "/v1", api_key="unused").chat.completions.create(
            model=name, messages=HELLO, temperature=0, max_tokens=16, extra_body={"repeat_penalty": 1.0})
        assert chat.choices[0].message.content == want
        client = ollama.Client(host=server.url)
        reply = client.chat(model=name, messages=HELLO, options={"temperature": 0, "num_predict": 16,
                                                                  "repeat_penalty": 1.0})
        assert reply.message.content == want
        running = {m.model: m for m in client.ps().models}
        assert name in running
    finally:
        server.stop()
