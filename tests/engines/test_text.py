import pytest

from xuetu.engines.text import StopStringStream


def feed(stops, pieces):
    s = StopStringStream(stops)
    text, out = "", []
    for p in pieces:
        text += p
        out.append(s.push(text))
        if s.stopped:
            break
    out.append(s.flush(text))
    return out, s.stopped


@pytest.mark.parametrize("stops, pieces, shown, stopped", [
    ([], ["Hel", "lo"], "Hello", False),
    (["END"], ["a", "b", "END", "c"], "ab", True),
    (["END"], ["ab", "E", "N", "D"], "ab", True),  # a stop split across tokens is never shown
    (["END"], ["ab", "E", "N", "x"], "abENx", False),  # a false alarm is released
    (["\n\n"], ["one\n", "\ntwo"], "one", True),
    (["用户:"], ["回答", "用户", ":继续"], "回答", True),
    (["a", "bc"], ["xb", "c"], "x", True),
])
def test_stop_strings(stops, pieces, shown, stopped):
    out, did_stop = feed(stops, pieces)
    assert "".join(out) == shown
    assert did_stop == stopped


def test_partial_utf8_waits_for_the_whole_character():
    s = StopStringStream([])
    assert s.push("大\ufffd") == ""
    assert s.push("大模") == "大模"
    assert s.flush("大模型\ufffd") == "型"


def naive(stops, pieces):
    """The specification: cut at the earliest stop string in the whole text; otherwise show everything."""
    text = "".join(pieces)
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def test_agrees_with_the_specification_on_random_streams():
    import random

    rng = random.Random(7)
    for _ in range(3000):
        stops = ["".join(rng.choice("ab") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 3))]
        text = "".join(rng.choice("abc") for _ in range(rng.randint(0, 14)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(1, 4))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        out, stopped = feed(stops, pieces)
        want, want_stopped = naive(stops, pieces)
        shown, full = "".join(out), "".join(pieces)
        assert stopped == want_stopped, (stops, pieces)
        if not stopped:
            assert shown == want
        else:  # never shows a stop string, and cuts exactly where one starts (the first one completed)
            assert not any(x in shown for x in stops), (stops, pieces, shown)
            assert any(full[len(shown):].startswith(x) for x in stops), (stops, pieces, shown)


def test_each_character_is_scanned_once_per_stop_string(monkeypatch):
    """Cost linear in the text: 16 stop strings of 256 characters that almost match never rescan the text."""
    import xuetu.engines.text as text_mod

    calls = {"n": 0}
    step = text_mod._Matcher.step

    def counted(self, c):
        calls["n"] += 1
        return step(self, c)

    monkeypatch.setattr(text_mod._Matcher, "step", counted)
    stops = ["a" * 255 + str(i % 10) + chr(65 + i) for i in range(16)]
    s = StopStringStream(stops)
    text = ""
    for _ in range(2000):
        text += "aaaa"
        s.push(text)
    assert calls["n"] == len(text) * len(stops)
    assert s.emitted == len(text) - 255  # what could still become a stop string is held back


@pytest.mark.parametrize("stop, message", [
    (["x"] * 17, "at most 16 strings"), (["x" * 257], "at most 256 characters"), (["ok", ""], "non-empty"),
])
def test_stop_strings_are_limited_in_count_and_length(stop, message):
    from xuetu.engines.base import GenerateOptions
    from xuetu.errors import XuetuError

    with pytest.raises(XuetuError, match=message):
        GenerateOptions(stop=stop)
