"""`xuetu data pairs` (train/pairs.py): answers sampled from a model (local or an OpenAI-compatible server), ranked
by rule rewards or a judge model, written as chosen/rejected pairs with their reasons; and the errors it gives."""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import xuetu.data
from helpers.server import ServerProcess
from xuetu.cli import main
from xuetu.errors import XuetuError
from xuetu.train.pairs import PairsArgs, Scored, choose, make_pairs, parse_score
from xuetu.train.rewards import parse


def prompts_file(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def pairs_of(path: Path) -> list:
    records = list(xuetu.data.load(path))
    assert records and all(r.is_pair for r in records)
    return records


def assert_ranked(records, specs: list[str]):
    """Each chosen answer scores above its rejected one by the same rewards, and the reason says so."""
    rewards = parse(specs)
    for r in records:
        question, example = r.messages[-2]["content"], {}
        chosen = rewards.score(question, r.messages[-1]["content"], example)[0]
        rejected = rewards.score(question, r.rejected["content"], example)[0]
        assert chosen > rejected
        reason = r.meta["extra"]["reason"]
        assert reason.startswith("chosen: ") and "; rejected: " in reason
        assert f"(total {round(chosen, 3)}); rejected" in reason and reason.endswith(f"(total {round(rejected, 3)})")
        assert all(spec in reason for spec in specs)


@pytest.mark.parametrize("reply, score", [
    ('{"score": 7}', 7.0), ('{"score": 12}', None), ("Score: 7", 7.0), ("score:10", 10.0), ("评分：8", 8.0), ("I'd give it 6/10.", 6.0), ("9 out of 10", 9.0),
    ("这个回答得 5 分", 5.0), ("3", 3.0), ("Rating is 4. Good.", 4.0), ("The answer is about 2023 and 0.5", None),
    ("Excellent!", None), ("Score: 11 -- no, 8", 8.0),
])
def test_a_judges_score_is_found_in_its_reply(reply, score):
    assert parse_score(reply) == score


def test_best_and_worst_are_chosen_and_a_tie_is_none():
    a, b, c = Scored("a", 1.0, {}), Scored("b", 3.0, {}), Scored("c", 3.0, {})
    assert choose([a, b, c]) == (b, a)  # the first drawn of equals
    assert choose([b, c]) is None and choose([a]) is None


def test_what_is_missing_is_said_before_any_model_loads(tmp_path):
    data = prompts_file(tmp_path / "p.jsonl", [{"prompt": "Hi"}])
    out = tmp_path / "pairs.jsonl"
    for args, message in [
        (["--prompts", str(tmp_path / "none.jsonl"), "--model", "tiny", "--reward", "guard"], "none.jsonl does not exist"),
        (["--prompts", str(data), "--reward", "guard"], "no model to answer the prompts"),
        (["--prompts", str(data), "--model", "tiny"], "nothing to rank the answers by"),
        (["--prompts", str(data), "--model", "tiny", "--reward", "bleu"], "unknown reward 'bleu'"),
        (["--prompts", str(data), "--model", "tiny", "--reward", "guard", "--n", "1"], "--n must be at least 2"),
        (["--prompts", str(data), "--model", "tiny", "--reward", "guard", "--temperature", "0"], "--temperature must be"),
        (["--prompts", str(data), "--model", "no-such-model:7b", "--reward", "guard"], "no-such-model"),
    ]:
        result = CliRunner().invoke(main, ["data", "pairs", *args, "--out", str(out), "-q"])
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert not out.exists()


def test_pairs_from_a_local_model_are_reproducible(tmp_path, tiny):
    data = prompts_file(tmp_path / "p.jsonl", [{"prompt": "The capital of France is"}, {"prompt": "大模型是"},
                                               {"prompt": "A token is"}])
    args = PairsArgs(prompts=str(data), out=str(tmp_path / "a.jsonl"), model="tiny", n=4, max_tokens=12,
                     rewards=["length:4", "regex:Paris"])
    s = make_pairs(args, progress=False)
    assert (s.prompts, s.pairs + s.ties) == (3, 3) and s.pairs >= 2 and s.mean_chosen > s.mean_rejected
    assert s.duplicates < 3  # seeds 0..3 at temperature 0.9 draw different answers
    records = pairs_of(tmp_path / "a.jsonl")
    assert len(records) == s.pairs
    assert_ranked(records, ["length:4", "regex:Paris"])
    again = make_pairs(PairsArgs(**{**args.__dict__, "out": str(tmp_path / "b.jsonl")}), progress=False)
    assert again.pairs == s.pairs and (tmp_path / "b.jsonl").read_text() == (tmp_path / "a.jsonl").read_text()

    # a reward every answer meets ties every prompt: an error, and no file
    with pytest.raises(XuetuError, match="no pairs: no prompt of 3"):
        make_pairs(PairsArgs(**{**args.__dict__, "out": str(tmp_path / "c.jsonl"), "rewards": ["regex:^"]}),
                   progress=False)
    assert not (tmp_path / "c.jsonl").exists() and not list(tmp_path.glob(".c.jsonl*"))


def test_pairs_from_an_openai_compatible_server(tmp_path, tiny):
    server = ServerProcess(Path(os.environ["XUETU_HOME"])).wait()
    try:
        data = prompts_file(tmp_path / "p.jsonl", [{"prompt": "The capital of France is"}, {"prompt": "A token is"}])
        s = make_pairs(PairsArgs(prompts=str(data), out=str(tmp_path / "pairs.jsonl"), url=server.url + "/v1",
                                 n=3, max_tokens=12, rewards=["length:4"]), progress=False)
        # the same server as a remote model in the store (xuetu create --api): --model names it
        from xuetu.models.remote import create_remote

        create_remote("up:tiny", preset="xuetu", url=server.url + "/v1", api_model="tiny:latest", key_env="")
        remote = make_pairs(PairsArgs(prompts=str(data), out=str(tmp_path / "remote.jsonl"), model="up:tiny",
                                      n=3, max_tokens=12, rewards=["length:4"]), progress=False)
    finally:
        server.stop()
    assert s.prompts == 2 and s.pairs >= 1 and s.duplicates < 2  # the server honours each request's seed
    assert_ranked(pairs_of(tmp_path / "pairs.jsonl"), ["length:4"])
    assert (remote.prompts, remote.pairs) == (s.prompts, s.pairs)  # the same seeds, the same answers
    answers = lambda path: [(r.messages, r.rejected) for r in pairs_of(path)]  # noqa: E731
    assert answers(tmp_path / "remote.jsonl") == answers(tmp_path / "pairs.jsonl")



def test_pairs_from_the_embedded_model_through_the_command(tmp_path, smollm2):
    data = prompts_file(tmp_path / "p.jsonl", [{"prompt": "用一句话介绍长城。"}, {"prompt": "What is the capital of France?"}])
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(main, ["data", "pairs", "--prompts", str(data), "--model", "smollm2:135m", "--n", "3",
                                       "--max-tokens", "16", "--reward", "language:zh", "--reward", "length:10",
                                       "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    records = pairs_of(out)
    assert f"{'prompts':<20}{2:>8}\n{'pairs written':<20}{len(records):>8}\n" in result.output
    assert_ranked(records, ["language:zh", "length:10"])
    assert records[0].messages[0] == {"role": "user", "content": "用一句话介绍长城。"}


def test_a_judge_model_scores_every_answer(tmp_path, smollm2):
    """The 135M judge is too weak to tell these answers apart on its own (it gives most the same score), so a
    length reward breaks its ties; what is checked is that every answer gets a 1-10 score from it, locally and
    from a server, and that the score is part of the ranking."""
    data = prompts_file(tmp_path / "p.jsonl", [{"prompt": "What is 2 plus 2?"}, {"prompt": "Name a colour."}])

    def judged(out: Path) -> None:
        for r in pairs_of(out):
            reason = r.meta["extra"]["reason"]
            scores = [float(part.split("judge=")[1].split()[0]) for part in reason.split(";")]
            totals = [float(part.split("(total ")[1].rstrip(")")) for part in reason.split(";")]
            assert all(1 <= v <= 10 for v in scores) and totals[0] > totals[1]

    s = make_pairs(PairsArgs(prompts=str(data), out=str(tmp_path / "pairs.jsonl"), model="smollm2:135m", n=3,
                             max_tokens=16, judge="smollm2:135m", rewards=["length:6"]), progress=False)
    assert s.prompts == s.pairs + s.ties == 2 and s.unjudged == 0  # constrained to {"score": 1-10}: always a score
    judged(tmp_path / "pairs.jsonl")

    # a server as the judge: its reply follows the score schema too (response_format json_schema). The server's
    # guard blocks a judge prompt as injection ("rate the assistant's answer… reply with"): a clear error, not a score
    server = ServerProcess(Path(os.environ["XUETU_HOME"])).wait()
    try:
        with pytest.raises(XuetuError, match="blocked a request by its content policy"):
            make_pairs(PairsArgs(prompts=str(data), out=str(tmp_path / "blocked.jsonl"), url=server.url + "/v1",
                                 model="smollm2:135m", n=2, max_tokens=8, judge_url=server.url + "/v1",
                                 judge="smollm2:135m"), progress=False)
    finally:
        server.stop()
    assert not (tmp_path / "blocked.jsonl").exists()
    server = ServerProcess(Path(os.environ["XUETU_HOME"]), "--no-guard").wait()
    try:
        s = make_pairs(PairsArgs(prompts=str(data), out=str(tmp_path / "served.jsonl"), url=server.url + "/v1",
                                 model="smollm2:135m", n=3, max_tokens=16, judge_url=server.url + "/v1",
                                 judge="smollm2:135m", rewards=["length:6"]), progress=False)
    finally:
        server.stop()
    assert s.prompts == s.pairs + s.ties == 2 and s.unjudged == 0
    judged(tmp_path / "served.jsonl")
