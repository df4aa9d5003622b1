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
