import json
import re

from click.testing import CliRunner

from xuetu.cli import main
from xuetu.data.split import split

# Distinct records: each names its own topic. (Rows that differed only in a number, "问题3：什么是第3个概念？", are
# near duplicates for Chinese now: a changed number is one of the edits near-dedup removes, see issue 21.)
TOPICS_ZH = ("注意力 量化 蒸馏 分词 微调 显存 学习率 批大小 过拟合 欠拟合 嵌入 向量检索 知识库 提示词 温度 采样 束搜索 损失函数 梯度 "
             "优化器 正则化 丢弃法 归一化 残差连接 位置编码 词表 解码器 编码器 预训练 指令微调 奖励模型 强化学习 评测集 困惑度 召回率 "
             "精确率 数据清洗 去重 检查点 推理速度").split()
TOPICS_EN = ("attention quantization distillation tokenization fine-tuning memory learning-rates batch-sizes overfitting "
             "underfitting embeddings vector-search knowledge-bases prompts temperature sampling beam-search losses "
             "gradients optimizers regularization dropout normalization residuals positional-encodings vocabularies "
             "decoders encoders pretraining instruction-tuning reward-models reinforcement-learning benchmarks perplexity "
             "recall precision data-cleaning deduplication checkpoints inference-speed").split()
ROWS = ([{"question": f"问题{i}：什么是{t}？", "answer": f"{t}的解释，和模型训练有关。"} for i, t in enumerate(TOPICS_ZH)]
        + [{"question": f"Question {i}: what is {t}?", "answer": f"{t.capitalize()} explained for beginners."}
           for i, t in enumerate(TOPICS_EN)])


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_stats_cli_writes_plot_and_json(tmp_path, smollm2):
    src = write(tmp_path / "qa.jsonl", ROWS + ROWS[:3])
    with open(src, "a", encoding="utf-8") as f:
        f.write('{"bad\n')
    out = tmp_path / "stats"
    result = CliRunner().invoke(main, ["data", "stats", str(src), "--out", str(out), "--context", "60"])
    assert result.exit_code == 0, result.output
    assert "records      83" in result.output and "duplicates   exact 3" in result.output
    png = (out / "token_lengths.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    data = json.loads((out / "stats.json").read_text())
    assert data["records"] == 83 and data["malformed"] == 1 and data["formats"] == {"qa": 83}
    assert set(data["languages"]) == {"zh", "en"} and data["turns"]["total"] == 83
    assert 0 < data["longer_than_context"] < 1 and data["tokens"]["max"] > 40


def test_split_is_deterministic_and_keeps_near_duplicates_together(tmp_path):
    rows = list(ROWS)
    for i in range(10):  # near duplicates of the first ten questions: a longer answer, one mark added
        # (a short addition: records that share a long fixed part and differ in one word merge, see docs/data.md)
        rows[i] = {**rows[i], "answer": rows[i]["answer"] + "数据要先清洗。"}
        rows.append({**rows[i], "answer": rows[i]["answer"] + "！"})
    src = write(tmp_path / "all.jsonl", rows)
    counts = split(src, tmp_path / "a", val=0.1, test=0.2, seed=7)
    split(src, tmp_path / "b", val=0.1, test=0.2, seed=7)
    for part in ("train", "val", "test"):
        assert (tmp_path / "a" / f"{part}.jsonl").read_bytes() == (tmp_path / "b" / f"{part}.jsonl").read_bytes()
    assert counts["train"] + counts["val"] + counts["test"] == len(rows) and counts["groups"] == 80
    assert abs(counts["test"] - 18) <= 2 and abs(counts["val"] - 9) <= 2
    where = {}
    for part in ("train", "val", "test"):
        for line in (tmp_path / "a" / f"{part}.jsonl").read_text(encoding="utf-8").splitlines():
            where.setdefault(json.loads(line)["answer"], set()).add(part)
    assert all(len(parts) == 1 for parts in where.values())  # no near-duplicate group straddles two splits
    other = split(src, tmp_path / "c", val=0.1, test=0.2, seed=8)
    assert (tmp_path / "c" / "test.jsonl").read_bytes() != (tmp_path / "a" / "test.jsonl").read_bytes()
    assert other["groups"] == 80


def test_data_cli(tmp_path):
    src = write(tmp_path / "in.jsonl", ROWS[:5] + ROWS[:2])
    r = CliRunner().invoke(main, ["data", "clean", str(src), str(tmp_path / "out.jsonl"), "-q"])
    assert r.exit_code == 0 and re.search(r"kept\s+5\n", r.output) and re.search(r"exact_duplicate\s+2\n", r.output)
    r = CliRunner().invoke(main, ["data", "convert", str(tmp_path / "out.jsonl"), str(tmp_path / "sg.jsonl"), "--to", "sharegpt"])
    assert r.exit_code == 0 and "wrote 5 records" in r.output
    assert "conversations" in (tmp_path / "sg.jsonl").read_text(encoding="utf-8").splitlines()[0]
    r = CliRunner().invoke(main, ["data", "split", str(tmp_path / "out.jsonl"), "--out", str(tmp_path / "s")])
    assert r.exit_code == 0 and (tmp_path / "s" / "train.jsonl").exists()
    r = CliRunner().invoke(main, ["data", "clean", str(tmp_path / "nope.jsonl"), str(tmp_path / "o.jsonl")])
    assert r.exit_code == 1 and "does not exist" in r.stderr
