"""`xuetu distill`: the teacher's answers (cached, resumable; a local or an OpenAI-compatible teacher), the
logit-level loss, its refusals, the command, and the proof that KD brings a student closer to its teacher."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from helpers.server import ServerProcess, free_port
from helpers.tiny import build_tiny_model
from xuetu import engines, models
from xuetu.cli import main
from xuetu.data import Record, tokenize_for_training
from xuetu.engines.base import GenerateOptions
from xuetu.errors import XuetuError
from xuetu.train import args as targs
from xuetu.train import attention
from xuetu.train.answer_cache import AnswerCache, answer_prompts
from xuetu.train.distill import distill
from xuetu.train.kd_loss import DistillLoss, kl_full
from xuetu.train.packing import collate, one_per_sequence, pack_sequences
from xuetu.train.runs import run_dir
from xuetu.train.teacher import LocalTeacher, read_prompts

QUICK = {"max_steps": 3, "batch_size": 2, "evaluate": False, "save_every": 10, "lr": 1e-3}


def prompts_file(path: Path, n: int = 10) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"What is {i} plus {i}?"}) + "\n" for i in range(n)), encoding="utf-8")
    return path


def qa_file(path: Path, n: int = 12) -> Path:
    rows = [{"question": f"What colour is planet {i}?", "answer": f"Planet {i} is green."} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


class CountingTeacher:
    """A real teacher that counts what it is asked, and can fail after `fail_after` answers (a crash)."""

    def __init__(self, teacher, fail_after: int | None = None, empty_for: str | None = None):
        self.teacher, self.name, self.asked = teacher, teacher.name, []
        self.fail_after, self.empty_for = fail_after, empty_for

    def ask(self, messages, max_tokens, temperature):
        if self.fail_after is not None and len(self.asked) >= self.fail_after:
            raise KeyboardInterrupt
        self.asked.append(messages[-1]["content"])
        if self.empty_for and self.empty_for in messages[-1]["content"]:
            return ""
        return self.teacher.ask(messages, max_tokens, temperature)


@pytest.fixture
def tiny2(tmp_path, tiny):
    """Another tiny model with the same tokenizer (a different random init), as the student."""
    return models.create("tiny2:latest", build_tiny_model(tmp_path / "tiny2", seed=1), progress=False)


def test_settings_are_checked():
    for bad, message in [(["kd.temperature=0"], "kd.temperature must be positive"),
                         (["kd.alpha=1.5"], r"kd.alpha must be in \[0, 1\]"), (["kd.top_k=0"], "kd.top_k must be at least 1"),
                         (["mode=words"], "mode must be one of sequence, logits, both"),
                         (["train.lr=fast"], "train.lr: .fast. does not fit"), (["train.model=x"], "set by distill itself"),
                         (["kd.tau=2"], "unknown setting kd.tau")]:
        with pytest.raises(XuetuError, match=message):
            targs.load(targs.DistillArgs, None, bad)
    cfg = targs.load(targs.DistillArgs, None, ["kd.top_k=8", "kd.alpha=0.3", "train.lora.r=4"], method="full")
    assert cfg.kd.top_k == 8 and cfg.kd.alpha == 0.3
    train = cfg.train_args(model="m", data="d")
    assert train.lora.r == 4 and train.lr == 2e-5  # full fine-tuning's default rate, as the method is full


def test_sequence_mode_resumes_the_teacher_cache(tmp_path, tiny, capsys):
    data = prompts_file(tmp_path / "prompts.jsonl")
    prompts = read_prompts(data)
    cache_path = run_dir("stu:latest") / "teacher.jsonl"
    cache_path.parent.mkdir(parents=True)
    real = LocalTeacher("tiny")
    crashing = CountingTeacher(real, fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        answer_prompts(prompts, crashing, AnswerCache(cache_path), cot=False, max_tokens=8, temperature=0, progress=False)
    assert len(lines(cache_path)) == 4  # each answer was on disk as soon as it came
    with open(cache_path, "a", encoding="utf-8") as f:
        f.write('{"key": "half-writt')  # a kill in the middle of the fifth line
    rerun = CountingTeacher(real)
    stats = answer_prompts(prompts, rerun, AnswerCache(cache_path), cot=False, max_tokens=8, temperature=0,
                           progress=False)
    assert "dropped a half-written last line" in capsys.readouterr().err
    assert rerun.asked == [f"What is {i} plus {i}?" for i in range(4, 10)]  # only the missing ones
    assert (stats.asked, stats.cached) == (6, 4)
    assert [r["messages"][-1]["content"] for r in lines(cache_path)] == [p.messages[-1]["content"] for p in prompts]

    # the command itself: every answer is cached, so the teacher is asked nothing and the student trains
    result = distill(targs.DistillArgs(teacher="tiny", student="tiny", data=str(data), out="stu", max_new_tokens=8,
                                       train=QUICK), progress=False)
    assert "(0 now, 10 cached)" in capsys.readouterr().err
    assert len(lines(cache_path)) == 10
    dataset = lines(result.run / "distilled.jsonl")
    assert len(dataset) == 10 and dataset[0]["messages"][-1] == {"role": "assistant", "content": lines(cache_path)[0]["answer"]}
    info = json.loads((result.run / "run.json").read_text())
    assert info["kind"] == "distill" and info["status"] == "finished" and info["teacher"] == "tiny:latest"
    assert len(lines(result.run / "metrics.jsonl")) == 3 and (result.run / "curves.png").is_file()
    ref = models.resolve("stu")
    assert ref.base == "tiny:latest" and ref.adapter_dir.is_dir()  # LoRA by default
    chunks = list(engines.load(ref).generate([{"role": "user", "content": "What is 2 plus 2?"}],
                                            GenerateOptions(temperature=0, max_tokens=4)))
    assert chunks[-1].completion_tokens >= 1


def test_empty_answers_are_skipped_and_counted(tmp_path, tiny, capsys):
    prompts = read_prompts(prompts_file(tmp_path / "p.jsonl", n=4))
    cache = AnswerCache(tmp_path / "teacher.jsonl")
    teacher = CountingTeacher(LocalTeacher("tiny"), empty_for="2 plus 2")
    stats = answer_prompts(prompts, teacher, cache, cot=True, max_tokens=6, temperature=0, progress=False)
    assert stats.empty == 1 and "the teacher gave 1 empty answers of 4" in capsys.readouterr().err
    rows = cache.dataset(prompts, stats.keys)
    assert len(rows) == 3 and all("2 plus 2" not in r["messages"][0]["content"] for r in rows)
    # --cot asks for reasoning, but the student learns to give it unasked: its data has no such instruction
    assert all(r["messages"][0]["role"] == "user" for r in rows)
    assert answer_prompts(prompts, teacher, cache, cot=False, max_tokens=6, temperature=0, progress=False).asked == 4


def test_an_openai_compatible_teacher(tmp_path, tiny):
    server = ServerProcess(Path(os.environ["XUETU_HOME"])).wait()
    try:
        data = prompts_file(tmp_path / "prompts.jsonl", n=6)
        result = distill(targs.DistillArgs(teacher_url=server.url + "/v1", student="tiny", data=str(data),
                                           out="from-api", max_new_tokens=8, train=QUICK), progress=False)
    finally:
        server.stop()
    cached = lines(result.run / "teacher.jsonl")
    assert len(cached) == 6 and all(r["teacher"] == "tiny:latest" for r in cached)  # the endpoint's first model
    assert sum(bool(r["answer"]) for r in cached) == len(lines(result.run / "distilled.jsonl")) > 0
    assert models.resolve("from-api").base == "tiny:latest"
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(XuetuError, match=f"cannot reach the teacher at {url}") as e:
        distill(targs.DistillArgs(teacher_url=url, student="tiny", data=str(data), out="nowhere"), progress=False)
    assert "server is running" in e.value.hint


def test_a_remote_model_in_the_store_as_teacher(tmp_path, tiny, monkeypatch):
    """--teacher names a remote model (xuetu create --api): its provider answers, over a real HTTP server."""
    from helpers.fakeapi import FakeAPI
    from xuetu.models.remote import create_remote

    monkeypatch.setenv("TEACHER_KEY", "sk-teacher-9")
    data = prompts_file(tmp_path / "prompts.jsonl", n=4)
    with FakeAPI(key="sk-teacher-9") as fake:
        create_remote("api:teacher", url=fake.url, api_model="echo", key_env="TEACHER_KEY")
        with pytest.raises(XuetuError, match="needs the teacher's logits, which the remote model api:teacher"):
            distill(targs.DistillArgs(teacher="api:teacher", student="tiny", data=str(data), mode="logits",
                                      out="nope"), progress=False)
        result = distill(targs.DistillArgs(teacher="api:teacher", student="tiny", data=str(data), out="from-remote",
                                           max_new_tokens=8, train=QUICK), progress=False)
        assert len(fake.chat_requests()) == 4
    rows = lines(result.run / "distilled.jsonl")
    assert len(rows) == 4 and all(r["messages"][-1]["content"].startswith("You said:") for r in rows)
    assert all(r["teacher"] == "api:teacher" for r in lines(result.run / "teacher.jsonl"))


def test_refusals(tmp_path, tiny):
    data = prompts_file(tmp_path / "p.jsonl")
    cases = [
        (dict(teacher="tiny", student="nope"), "student model 'nope' not found"),
        (dict(teacher="nope", student="tiny"), "teacher model 'nope' not found"),
        (dict(student="tiny"), "no teacher"),
        (dict(teacher="tiny", student="tiny", data=str(tmp_path / "missing.jsonl")), "does not exist"),
        (dict(teacher_url="http://127.0.0.1:9/v1", student="tiny", mode="logits"), "needs the teacher's logits"),
    ]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    cases.append((dict(teacher="tiny", student="tiny", data=str(empty)), "holds no prompts"))
    no_user = tmp_path / "no-user.jsonl"
    no_user.write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"prompt": "   "}) + "\n", encoding="utf-8")
    cases.append((dict(teacher="tiny", student="tiny", data=str(no_user)), "1 prompts have no user text .*no-user.jsonl:2"))
    for given, message in cases:
        with pytest.raises(XuetuError, match=message):
            distill(targs.DistillArgs(**{"data": str(data), **given}), progress=False)


def test_mismatched_tokenizers_are_refused(tmp_path, tiny):
    other = shutil.copytree(tiny.hf_dir, tmp_path / "other")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(other)
    tok.add_tokens(["<unseen>"])
    tok.save_pretrained(other)
    models.create("other:latest", other, progress=False)
    data = qa_file(tmp_path / "qa.jsonl")
    with pytest.raises(XuetuError, match="different tokenizers") as e:
        distill(targs.DistillArgs(teacher="tiny", student="other", data=str(data), mode="logits"), progress=False)
    assert "--mode sequence" in e.value.hint


def test_the_loss_is_the_formula_and_packing_changes_nothing(tiny, tiny2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny.hf_dir)
    teacher, student = (AutoModelForCausalLM.from_pretrained(r.hf_dir) for r in (tiny, tiny2))
    records = [Record(messages=[{"role": "user", "content": f"Sky {i}?"}, {"role": "assistant", "content": "Green " * (i + 1)}])
               for i in range(3)]
    examples = [tokenize_for_training(tok, r) for r in records]
    kl_only = DistillLoss(student, alpha=0.0, temperature=2.0, teacher=teacher)
    with torch.no_grad(), attention.use_packed_attention(student):  # the student packed as finetune() does it
        separate = sum(float(kl_only(**collate(one_per_sequence([e]), tok.pad_token_id, torch.float32, False))[0])
                       for e in examples)
        packed = kl_only(**collate(pack_sequences(examples, 512), tok.pad_token_id, torch.float32, False))
    assert float(packed[0]) == pytest.approx(separate, rel=1e-4)  # the teacher keeps packed examples apart too
    loss = DistillLoss(student, alpha=0.3, temperature=2.0, teacher=teacher)
    batch = collate(one_per_sequence(examples[:1]), tok.pad_token_id, torch.float32, False)
    keep = batch["labels"][0, 1:] != -100
    with torch.no_grad():
        s, t = student(input_ids=batch["input_ids"]).logits[0, :-1][keep], teacher(input_ids=batch["input_ids"]).logits[0, :-1][keep]
    ce = torch.nn.functional.cross_entropy(s, batch["labels"][0, 1:][keep], reduction="sum")
    expected = 0.3 * ce + 0.7 * 4.0 * kl_full(s, t, 2.0)
    with torch.no_grad():
        assert float(loss(**batch)[0]) == pytest.approx(float(expected), rel=1e-4)


def test_logits_mode(tmp_path, tiny, tiny2):
    data = qa_file(tmp_path / "qa.jsonl")
    # a model distilled from itself has nothing to learn: with alpha=0 the loss is the KL, which is 0
    same = distill(targs.DistillArgs(teacher="tiny", student="tiny", data=str(data), mode="logits", method="full",
                                     out="self", kd=targs.KDArgs(alpha=0.0), train=QUICK), progress=False)
    assert lines(same.run / "metrics.jsonl")[0]["loss"] < 1e-4
    # a different student learns, from cached top-k: the cache is in the run folder and the teacher is freed
    result = distill(targs.DistillArgs(teacher="tiny", student="tiny2", data=str(data), mode="logits", method="full",
                                       out="kd", kd=targs.KDArgs(alpha=0.5, top_k=8), train={**QUICK, "max_steps": 6}),
                     progress=False)
    metrics = lines(result.run / "metrics.jsonl")
    assert len(metrics) == 6 and metrics[-1]["loss"] < metrics[0]["loss"]
    saved = torch.load(result.run / "teacher-top8.pt", weights_only=True)
    assert saved["teacher"] == "tiny:latest" and len(saved["examples"]) == 12
    values, indices = next(iter(saved["examples"].values()))
    assert values.shape[1] == indices.shape[1] == 8
    assert models.resolve("kd").hf_dir is not None  # full: a whole model, usable at once
    info = json.loads((result.run / "run.json").read_text())
    assert info["distill"]["mode"] == "logits" and info["distill"]["kd"]["top_k"] == 8


def test_the_command(tmp_path, tiny):
    data = prompts_file(tmp_path / "prompts.jsonl", n=6)
    r = CliRunner().invoke(main, ["distill", "--teacher", "tiny", "--student", "tiny", "--data", str(data), "--mode", "both",
                                  "--method", "full", "--out", "cli-stu", "--set", "max_new_tokens=6",
                                  "--set", "train.max_steps=2", "--set", "train.evaluate=false"])
    assert r.exit_code == 0, r.output
    assert "distilled cli-stu:latest in 2 steps" in r.output and "xuetu run cli-stu:latest" in r.output
    assert models.resolve("cli-stu").hf_dir is not None
    r = CliRunner().invoke(main, ["distill", "--teacher", "tiny", "--student", "tiny", "--data", str(data),
                                  "--set", "kd.alpha=2"])
    assert r.exit_code == 1 and "kd.alpha must be in [0, 1]" in r.output


@pytest.mark.slow
def test_kd_brings_the_student_closer_to_the_teacher(tmp_path, smollm2, monkeypatch):
    """The demonstration: one fresh student (2 layers, hidden 64, SmolLM2's tokenizer) trained twice on the same
    data with the same seed and steps, with KD (alpha=0.2) and without (alpha=1: plain cross-entropy). On held-out
    texts the KD student's KL(teacher || student) must be clearly lower."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    shutil.copytree(smollm2.path.parent, home / "models" / "smollm2", copy_function=os.link)  # hard links: no copy
    monkeypatch.setenv("XUETU_HOME", str(home))
    tok = AutoTokenizer.from_pretrained(smollm2.hf_dir)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "student")
    tok.save_pretrained(tmp_path / "student")
    models.create("student:latest", tmp_path / "student", progress=False)
    rows = [json.loads(x) for x in (Path(__file__).parents[2] / "src/xuetu/examples/ai_tutor/qa.jsonl").read_text().splitlines()]
    train, held = rows[:30], rows[30:]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in train), encoding="utf-8")
    for out, alpha in (("kd", 0.2), ("ce", 1.0)):
        distill(targs.DistillArgs(teacher="smollm2:135m", student="student", data=str(data), mode="logits", method="full",
                                  out=out, kd=targs.KDArgs(alpha=alpha, temperature=2.0, top_k=64),
                                  train={"max_steps": 60, "batch_size": 4, "lr": 3e-3, "val_fraction": 0, "evaluate": False}),
                progress=False)

    teacher = AutoModelForCausalLM.from_pretrained(smollm2.hf_dir).eval()

    def held_out_kl(name: str) -> float:
        student = AutoModelForCausalLM.from_pretrained(models.resolve(name).hf_dir).eval()
        total = count = 0.0
        with torch.no_grad():
            for r in held:
                ex = tokenize_for_training(tok, Record(messages=[{"role": "user", "content": r["question"]},
                                                                 {"role": "assistant", "content": r["answer"]}]))
                ids, keep = torch.tensor([ex.input_ids]), torch.tensor(ex.labels[1:]) != -100
                t, s = teacher(ids).logits[0, :-1][keep], student(ids).logits[0, :-1][keep]  # (n, vocab)
                total, count = total + float(kl_full(s, t, 1.0)), count + int(keep.sum())
        return total / count

    kd, ce = held_out_kl("kd"), held_out_kl("ce")
    print(f"held-out KL(teacher || student): with KD {kd:.3f}, cross-entropy only {ce:.3f}")
    assert kd < 0.9 * ce, (kd, ce)
