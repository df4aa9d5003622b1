import pytest

from xuetu.errors import InvalidName
from xuetu.models.names import closest, parse_name


@pytest.mark.parametrize("raw, canonical, parts", [
    ("smollm2:135m", "smollm2:135m", ("smollm2", "135m")),
    ("smollm2", "smollm2:latest", ("smollm2", "latest")),
    ("SmolLM2:135M", "smollm2:135m", ("smollm2", "135m")),
    ("myteam/assistant:v1", "myteam/assistant:v1", ("myteam", "assistant", "v1")),
    ("Qwen/Qwen2.5-0.5B-Instruct", "qwen/qwen2.5-0.5b-instruct:latest", ("qwen", "qwen2.5-0.5b-instruct", "latest")),
    ("  qwen2.5:0.5b-base ", "qwen2.5:0.5b-base", ("qwen2.5", "0.5b-base")),
])
def test_valid_names(raw, canonical, parts):
    name = parse_name(raw)
    assert str(name) == canonical
    assert name.parts == parts


@pytest.mark.parametrize("raw", [
    "", "   ", "../evil", "a/../b", "..", "a/..:x", "x:..", "/etc/passwd", "~/model", "a/b/c", "x:y:z",
    ".hidden", "-dash", "a\\b", "C:\\models\\x", "name:tag/../../x", "bad name", "a//b", "nul\x00l", "模型:1",
])
def test_invalid_names_are_refused(raw):
    with pytest.raises(InvalidName):
        parse_name(raw)


def test_closest_suggests_near_names():
    known = ["smollm2:135m", "smollm2:360m", "qwen2.5:0.5b", "deepseek-r1:1.5b"]
    assert closest("smolm2:135m", known)[0] == "smollm2:135m"
    assert "qwen2.5:0.5b" in closest("qwen2.5:7b-nope", known)
