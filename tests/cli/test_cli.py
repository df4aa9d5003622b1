"""The CLI as users run it: real processes for the entry point and a real terminal for the chat session."""

import json
import subprocess
import sys

import pexpect
import pytest
from click.testing import CliRunner

from xuetu import __version__
from xuetu.cli import main


def cli(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def test_version():
    out = subprocess.run([sys.executable, "-m", "xuetu", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"xuetu {__version__}"


def test_help_lists_verbs():
    out = cli("--help").output
    for verb in ["pull", "list", "show", "rm", "cp", "create", "run", "tokenize"]:
        assert f"  {verb}" in out


def test_store_verbs(tiny_dir):
    assert cli("create", "demo:v1", "--from", str(tiny_dir)).output.strip() == "created demo:v1"
    assert "demo:v1" in cli("list").output
    rows = json.loads(cli("list", "--json").output)
    assert rows[0]["name"] == "demo:v1" and rows[0]["kind"] == "chat"
    shown = cli("show", "demo:v1", "--verify")
    assert shown.exit_code == 0 and "All checksums verified." in shown.output
    assert "FP32" in shown.output and "LlamaForCausalLM" in shown.output
    assert cli("cp", "demo:v1", "demo:v2").exit_code == 0
    assert cli("rm", "demo:v1").output.strip() == "deleted demo:v1"
    assert [r["name"] for r in json.loads(cli("list", "--json").output)] == ["demo:v2"]


@pytest.mark.parametrize("args, message", [
    (["show", "smolm2:135m"], "Did you mean smollm2:135m"),
    (["show", "../../etc/passwd"], "invalid model name"),
    (["rm", "ghost:1"], "not in the store"),
    (["pull", "no-such-model"], "not found"),
    (["pull", "qwen2.5:0.5b"], "cannot reach"),
    (["run", "tiny", "hi", "--temperature", "-3"], "temperature must be"),
    (["run", "tiny", "hi", "--engine", "tensorrt"], "unknown engine"),
    (["create", "x:1", "--from", "/nonexistent/folder"], "does not exist"),
])
def test_errors_are_one_clear_message(tiny, args, message):
    result = cli(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert result.stderr.startswith("Error: ")


def test_run_one_shot(tiny):
    result = cli("run", "tiny", "What is LoRA?", "--temperature", "0", "-n", "8", "--verbose")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    assert "generated:" in result.stderr and "tokens/s" in result.stderr


def test_run_reads_stdin(tiny):
    result = cli("run", "tiny", "--temperature", "0", "-n", "5", input="What is a token?\n")
    assert result.exit_code == 0 and result.stdout.strip()


def test_tokenize(tiny):
    out = cli("tokenize", "tiny", "大模型 is fun").output
    assert "tokens for 10 characters" in out
    views = json.loads(cli("tokenize", "tiny", "大模型", "--json").output)
    assert "".join(v["text"] for v in views if v["part"] == 1) == "大模型"


def test_interactive_session(tiny, xuetu_home):
    env = {"XUETU_HOME": str(xuetu_home), "PATH": "/usr/bin:/bin", "TERM": "dumb", "HF_HUB_OFFLINE": "1"}
    child = pexpect.spawn(sys.executable, ["-m", "xuetu", "run", "tiny", "-n", "6", "--temperature", "0"],
                          env=env, encoding="utf-8", timeout=60)
    try:
        child.expect("Type /\\? for help")
        child.expect(">>> ")
        child.sendline("/?")
        child.expect("/clear")
        child.expect(">>> ")
        child.sendline("/set temperature 0.3")
        child.expect("Set.")
        child.expect(">>> ")
        child.sendline("/show")
        child.expect("temperature\\s+0.3")
        child.expect(">>> ")
        child.sendline("/system You are brief.")
        child.expect("System prompt set.")
        child.expect(">>> ")
        child.sendline("Hello there")
        child.expect(">>> ")  # an answer was streamed, then the prompt came back
        child.sendline("/set tempo 1")
        child.expect("unknown setting")
        child.expect(">>> ")
        child.sendline("/clear")
        child.expect("Conversation cleared.")
        child.expect(">>> ")
        child.sendline("/bye")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert (xuetu_home / "history").read_text().count("Hello there") == 1
