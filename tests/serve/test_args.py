import pytest

from xuetu.cli.serve import parse_size
from xuetu.errors import XuetuError
from xuetu.serve.args import ServeArgs, parse_duration


@pytest.mark.parametrize("raw, seconds", [("5m", 300), ("1h30m", 5400), ("30s", 30), ("250ms", 0.25), (0, 0),
                                          ("0", 0), (90, 90), ("-1", None), (-1, None), ("-5m", None), ("1.5h", 5400)])
def test_parse_duration(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["5 minutes", "m", "5x", "1h5", True])
def test_bad_durations(raw):
    with pytest.raises(XuetuError):
        parse_duration(raw)


@pytest.mark.parametrize("raw, size", [("8MB", 8_000_000), ("512MiB", 512 * 2**20), ("2KB", 2000), ("100", 100),
                                       ("1.5GB", 1_500_000_000)])
def test_parse_size(raw, size):
    assert parse_size(raw) == size


def test_args_validation(monkeypatch):
    monkeypatch.setenv("XUETU_API_KEYS", "a, b,,a")
    assert ServeArgs(api_keys=["c", "a"]).api_keys == ["c", "a", "b"]
    with pytest.raises(XuetuError):
        ServeArgs(port=0)
    with pytest.raises(XuetuError):
        ServeArgs(max_queue=0)
    with pytest.raises(XuetuError):
        ServeArgs(keep_alive="soon")
