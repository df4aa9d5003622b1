"""Issue 24's acceptance: a LoRA fine-tune of the embedded SmolLM2-135M on a small tool-calling set (four
tools, English and Chinese) teaches it to call the right tool by itself, under tool_choice "auto", on
held-out requests; `xuetu compare` shows base against tuned."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_lora_teaches_the_embedded_model_to_choose_and_call_tools(tool_tuned, tmp_path):
    home, tuned, held = tool_tuned
    out = subprocess.run([sys.executable, "-m", "xuetu", "compare", "--models", f"smollm2:135m,{tuned}",
                          "--data", str(held), "--max-tokens", "48", "-q", "--out", str(tmp_path / "c")],
                         capture_output=True, text=True, timeout=1200, env={**os.environ, "XUETU_HOME": str(home)})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "c" / "report.json").read_text(encoding="utf-8"))
    base, after = (report["rows"][m]["metrics"] for m in ("smollm2:135m", tuned))
    print(out.stdout)
    assert base["tool_name"]["value"] <= 0.2 and after["tool_name"]["value"] >= 0.8, (base, after)
    # Arguments are harder for 135M parameters: it calls get_time for "Oslo" but may write "Olsen".
    assert after["tool_args"]["value"] >= 0.4 and after["tool_schema"]["value"] >= 0.9, after
    assert report["pairs"][tuned]["metric"] == "tool_name" and report["pairs"][tuned]["significant"]
    # the report shows what each side called; small talk mostly stays small talk (the 135M model has once
    # answered "你是谁？" with get_weather(city="你"))
    calls = [e for e in report["examples"] if e["reference"].startswith("called ")]
    assert sum(e["answers"][tuned] == e["reference"] for e in calls) >= 0.4 * len(calls)
    chat = [e for e in report["examples"] if not e["reference"].startswith("called ")]
    words = [e for e in chat if "called " not in e["answers"][tuned] and "<tool_call>" not in e["answers"][tuned]]
    assert chat and len(words) >= len(chat) / 2, chat
