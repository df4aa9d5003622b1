import json
import os

import pytest

from xuetu import models
from xuetu.errors import InvalidName, ModelNotFound, XuetuError
from xuetu.models import store
from xuetu.models.facts import PRECISIONS, describe, safetensors_parameters


def test_create_list_show(tiny, tiny_dir, xuetu_home):
    assert tiny.name == "tiny:latest"
    assert tiny.kind == "chat"
    assert [r.name for r in models.list_models()] == ["tiny:latest"]
    manifest = json.loads((tiny.path / "manifest.json").read_text())
    assert manifest["formats"] == {"hf": "hf"}
    assert manifest["files"]["hf/model.safetensors"]["sha256"]
    assert tiny.problems(deep=True) == []
    assert tiny.path.is_relative_to(xuetu_home)


def test_parameter_count_matches_the_model(tiny):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny.hf_dir)
    facts = describe(tiny)
    assert facts.parameters == model.num_parameters() == safetensors_parameters(tiny.hf_dir)
    assert facts.architecture == "LlamaForCausalLM"
    assert facts.context_length == 128
    assert facts.chat_template is True


def test_facts_are_kept_on_disk_and_read_again_when_a_file_changes(tiny, xuetu_home):
    """/api/tags after a restart must not open the weights again (issue 29: a slow first model list)."""
    counted = describe(tiny).parameters
    kept = [f for f in (xuetu_home / "cache" / "facts").glob("*.json") if "parameters" in json.loads(f.read_text())]
    assert len(kept) == 1
    kept[0].write_text(json.dumps({"parameters": 7}))  # what is kept is what comes back: nothing was read again
    assert describe(tiny).parameters == 7
    weights = tiny.hf_dir / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a changed file is read again
    assert describe(tiny).parameters == counted


def test_memory_follows_the_seeds_rule():
    from xuetu.models.facts import ModelFacts

    mem = dict(ModelFacts(name="x", kind="chat", parameters=1_000_000_000).memory())
    assert mem == {"FP32": 4_000_000_000, "FP16/BF16": 2_000_000_000, "INT8": 1_000_000_000, "Q4": 500_000_000}
    assert [p for p, _ in PRECISIONS] == list(mem)


def test_copy_hard_links_and_remove(tiny):
    copy = store.copy("tiny:latest", "tiny:copy")
    assert copy.problems(deep=True) == []
    a, b = tiny.hf_dir / "model.safetensors", copy.hf_dir / "model.safetensors"
    assert os.path.samefile(a, b)
    assert copy.manifest["copied_from"] == "tiny:latest"
    assert sorted(r.name for r in models.list_models()) == ["tiny:copy", "tiny:latest"]
    store.remove("tiny:copy")
    assert [r.name for r in models.list_models()] == ["tiny:latest"]
    assert tiny.problems(deep=True) == []  # removing a copy leaves the original intact
    with pytest.raises(XuetuError, match="already exists"):
        store.copy("tiny:latest", "tiny:latest")


def test_remove_unknown_and_invalid(xuetu_home, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    with pytest.raises(XuetuError, match="not in the store"):
        store.remove("nothing:here")
    for bad in ["../precious.txt", "/etc/passwd", "../../x", "a/../../b"]:
        with pytest.raises(InvalidName):
            store.remove(bad)
    assert outside.read_text() == "keep me"


def test_corrupt_files_are_never_listed_as_usable(tiny, capsys):
    weights = tiny.hf_dir / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    assert tiny.problems() and "expected" in tiny.problems()[0]
    from click.testing import CliRunner

    from xuetu.cli import main

    result = CliRunner().invoke(main, ["list"])
    assert "tiny:latest" not in result.stdout
    assert "damaged" in result.stderr


def test_bitrot_caught_by_deep_check(tiny):
    weights = tiny.hf_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert tiny.problems() == []  # same size
    assert any("sha256" in p for p in tiny.problems(deep=True))


def test_half_written_models_are_invisible(xuetu_home, tiny_dir):
    # A pull interrupted while staging leaves files in tmp/, never under models/.
    with pytest.raises(RuntimeError):
        with store.staging() as tmp:
            (tmp / "hf").mkdir()
            (tmp / "hf" / "config.json").write_text("{}")
            raise RuntimeError("interrupted")
    assert models.list_models() == []
    assert not any((xuetu_home / "tmp").iterdir())


def test_resolve_unknown_suggests(tiny):
    with pytest.raises(ModelNotFound) as e:
        models.resolve("tinny:latest")
    assert "tiny:latest" in e.value.hint
    with pytest.raises(ModelNotFound) as e:
        models.resolve("smolm2:135m")
    assert "smollm2:135m" in e.value.hint


def test_adapter_model_depends_on_base(tiny, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny.hf_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    ref = models.create("tiny-lora:v1", tmp_path / "adapter")  # base read from adapter_config.json
    assert ref.base == "tiny:latest" and ref.adapter_dir.is_dir()
    assert describe(ref).parameters > describe(tiny).parameters
    with pytest.raises(XuetuError, match="base of tiny-lora:v1"):
        store.remove("tiny:latest")
    store.remove("tiny-lora:v1")
    store.remove("tiny:latest")
    assert models.list_models() == []


def test_create_refuses_unreadable_paths(xuetu_home, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(XuetuError, match="not a model"):
        models.create("x:1", tmp_path / "empty")
    with pytest.raises(XuetuError, match="does not exist"):
        models.create("x:1", tmp_path / "missing")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"NOTAGGUF" * 10)
    with pytest.raises(XuetuError, match="not a GGUF"):
        models.create("x:1", fake)
    assert models.list_models() == []
