"""The judge's position swap cancels order bias; verdicts and scores are parsed; a real model can judge."""

from __future__ import annotations

from xuetu.evaluate import judge


def first_position_judge(messages):
    """A judge with pure position bias: whatever comes first wins."""
    return "Winner: A"


def length_judge(messages):
    """A judge that reads the answers: the longer one wins, wherever it stands."""
    text = messages[-1]["content"]
    a = text.split("Answer A:\n")[1].split("\n\nAnswer B:")[0]
    b = text.split("Answer B:\n")[1].split("\n\nReply")[0]
    return "Winner: A" if len(a) > len(b) else "Winner: B"


def test_position_bias_becomes_a_tie():
    v = judge.pairwise(first_position_judge, "Q?", "short", "a much longer answer")
    assert (v.first, v.swapped, v.winner, v.consistent) == ("a", "b", "tie", False)


def test_a_consistent_judge_names_the_winner_in_both_orders():
    v = judge.pairwise(length_judge, "Q?", "short", "a much longer answer")
    assert (v.first, v.swapped, v.winner, v.consistent) == ("b", "b", "b", True)
    assert judge.pairwise(length_judge, "Q?", "a much longer answer", "short").winner == "a"


def test_verdicts_and_scores_are_parsed_leniently():
    assert judge._winner("Winner: B") == "b" and judge._winner("winner：tie") == "tie"
    assert judge._winner("I think Answer A is better.") == "a" and judge._winner("no idea") == "tie"
    ask = lambda m: "Score: 7"  # noqa: E731
    assert judge.pointwise(ask, "Q", "A") == 7.0
    assert judge.pointwise(lambda m: "I'd give it 9/10.", "Q", "A") == 9.0
    assert judge.pointwise(lambda m: "great answer", "Q", "A") is None


def test_the_embedded_model_as_a_judge_is_greedy_and_repeatable(smollm2):
    ask = judge.engine_judge("smollm2:135m")
    prompt = [{"role": "user", "content": judge.PAIR.format(rubric=judge.RUBRIC, question="What is the capital of "
                                                             "France?", ref="", a="Paris.", b="Berlin.")}]
    first = ask(prompt)
    assert first.strip() and ask(prompt) == first  # greedy: the same verdict every time, so runs can be cached
