"""Weight-only INT8 and fp16/bf16 on the transformers engine: really smaller, still right, refused where it cannot apply."""

import asyncio

import pytest
import torch
from click.testing import CliRunner

from xuetu import engines, models
from xuetu.cli import main
from xuetu.engines.base import GenerateOptions
from xuetu.engines.quant import Int8Linear, linear_bytes
from xuetu.errors import XuetuError

PROMPTS = ["What is the capital of France?", "Name three colours.", "What is 2 + 2?", "Say hello in Chinese."]


def greedy(engine, prompt, n=10):
    opts = GenerateOptions(temperature=0, max_tokens=n, repeat_penalty=1.0)
    return "".join(c.text for c in engine.generate([{"role": "user", "content": prompt}], opts))


@pytest.fixture(scope="module")
def pair(embedded_home):
    """The embedded SmolLM2 at fp32 and at int8 (loaded once: each load takes seconds)."""
    from helpers.env import home_env

    with home_env(embedded_home):
        fp32 = engines.load("smollm2:135m", engine="transformers")
        int8 = engines.load("smollm2:135m", engine="transformers", quant="int8")
    return fp32, int8


def test_int8_weights_are_int8_and_four_times_smaller(pair):
    fp32, int8 = pair
    layers = [m for m in int8.model.modules() if isinstance(m, Int8Linear)]
    assert len(layers) == 30 * 7 + 1 and all(m.qweight.dtype == torch.int8 for m in layers)  # + the tied lm_head
    assert linear_bytes(int8.model) < 0.4 * linear_bytes(fp32.model)
    assert 0.24 < int8.info()["weights_bytes"] / fp32.info()["weights_bytes"] < 0.3
    assert int8.info()["quant"] == "int8" and fp32.info()["quant"] is None
    # the measurement is of storage, not a count times a guess: fp32 is 4 bytes x parameters
    assert fp32.info()["weights_bytes"] >= 4 * sum(p.numel() for p in fp32.model.parameters())


def test_int8_agrees_with_fp32_greedy(pair):
    fp32, int8 = pair
    same = 0
    for prompt in PROMPTS:
        a, b = greedy(fp32, prompt), greedy(int8, prompt)
        assert b.strip(), prompt
        n = min(len(a), len(b), 20)
        same += a[:n] == b[:n]
        if prompt == PROMPTS[0]:
            assert "Paris" in b
    assert same >= 3, "int8 should agree with fp32 on the first words of most prompts"


def test_int8_perplexity_within_a_few_percent(pair):
    fp32, int8 = pair
    text = ("The Eiffel Tower is in Paris, the capital of France. Machine learning lets computers learn from data. "
            "埃菲尔铁塔位于法国首都巴黎。机器学习让计算机从数据中学习。")
    ids = torch.tensor([fp32.encode(text)])  # (1, T)

    def ppl(engine):
        with torch.inference_mode():
            logits = engine.model(input_ids=ids).logits[0, :-1].float()  # (T-1, vocab)
        return torch.nn.functional.cross_entropy(logits, ids[0, 1:]).exp().item()

    assert abs(ppl(int8) / ppl(fp32) - 1) < 0.05


def test_16_bit_loads_on_cpu(smollm2):
    engine = engines.load(smollm2, engine="transformers", quant="bf16")
    assert engine.info()["dtype"] == "bfloat16"
    assert 0.49 < engine.info()["weights_bytes"] / (4 * 134_515_008) < 0.51
    assert "Paris" in greedy(engine, PROMPTS[0])


def test_lora_adapter_is_merged_then_quantised(tiny, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny.hf_dir)
    cfg = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(tmp_path / "adapter")
    models.create("tiny-lora:a", tmp_path / "adapter", progress=False)
    fp32 = engines.load("tiny-lora:a", engine="transformers")
    int8 = engines.load("tiny-lora:a", engine="transformers", quant="int8")
    assert not any("lora" in n for n, _ in int8.model.named_modules())
    ids = torch.tensor([fp32.encode("hello there")])
    with torch.inference_mode():
        a, b = fp32.model(input_ids=ids).logits, int8.model(input_ids=ids).logits
    base = engines.load("tiny:latest", engine="transformers")
    with torch.inference_mode():
        c = base.model(input_ids=ids).logits
    assert (a - b).abs().max() < 0.2 * (a - c).abs().max()  # int8 keeps the adapter's effect


@pytest.mark.parametrize("quant", ["int4", "q8_0", "INT8"])
def test_unknown_quant_is_refused_with_the_choices(tiny, quant):
    with pytest.raises(XuetuError) as e:
        engines.load("tiny:latest", engine="transformers", quant=quant)
    assert "int8, fp16, bf16" in e.value.hint
    result = CliRunner().invoke(main, ["run", "tiny:latest", "hi", "--quant", quant])
    assert result.exit_code == 2 and "'int8', 'fp16', 'bf16'" in result.output


def test_cli_choices_match_the_engine_list():
    from xuetu.cli.chat import quant_option

    @quant_option
    def f(quant):
        pass

    assert list(f.__click_params__[0].type.choices) == list(engines.QUANTS)


def test_quant_on_llama_cpp_points_to_a_gguf_export(smollm2):
    with pytest.raises(XuetuError) as e:
        engines.load(smollm2, engine="llama.cpp", quant="int8")
    assert "xuetu export smollm2:135m --format gguf --quant q8_0" in e.value.hint
    # auto would pick llama.cpp for this GGUF on a CPU; asking for int8 picks transformers instead
    assert engines.choose(smollm2, "auto") == "llama.cpp"
    assert engines.choose(smollm2, "auto", "int8") == "transformers"
    result = CliRunner().invoke(main, ["serve", "--engine", "llama.cpp", "--quant", "int8"])
    assert result.exit_code != 0 and "xuetu export" in result.output


def test_cli_show_reports_measured_memory(smollm2):
    fast = CliRunner().invoke(main, ["show", "smollm2:135m"])
    assert fast.exit_code == 0 and "measured" not in fast.output
    result = CliRunner().invoke(main, ["show", "smollm2:135m", "--quant", "int8"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "INT8 loaded" in x)
    assert "135.4 MB measured" in line


def test_cli_run_int8(tiny):
    result = CliRunner().invoke(main, ["run", "tiny:latest", "hi", "--quant", "int8", "-n", "5", "--temperature", "0",
                                       "-v"])
    assert result.exit_code == 0, result.output
    assert "[transformers int8, weights" in result.output


def test_serve_loads_int8_and_ps_reports_measured_size(tiny):
    from xuetu.serve.args import ServeArgs
    from xuetu.runtime.manager import ModelManager

    async def sizes(quant):
        manager = ModelManager(ServeArgs(quant=quant))
        lease = await manager.acquire("tiny:latest")
        lease.release()
        (entry,) = manager.ps()
        await manager.close()
        return entry

    fp32, int8 = asyncio.run(sizes(None)), asyncio.run(sizes("int8"))
    assert int8["quant"] == "int8" and fp32["quant"] is None
    assert int8["size"] < 0.4 * fp32["size"]
