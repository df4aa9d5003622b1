"""Remote models as store entries: created from a preset or a URL, marked in list and show, the key never stored,
and usable by `xuetu run` like any model (against a real HTTP upstream)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from helpers.fakeapi import FakeAPI
from xuetu.cli import main
from xuetu.errors import BadInput
from xuetu.models import resolve
from xuetu.models.remote import PRESETS, build

SECRET = "sk-live-SECRET-4242424242"


def cli(*args):
    return CliRunner().invoke(main, list(args))


def test_a_preset_fills_in_url_and_key_variable(xuetu_home, monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", SECRET)
    r = cli("create", "deepseek:chat", "--preset", "deepseek", "--api-model", "deepseek-chat",
            "--price-in", "2", "--price-out", "8", "--currency", "CNY")
    assert r.exit_code == 0, r.output
    assert "DEEPSEEK_API_KEY" in r.output and "never stored" in r.output
    remote = resolve("deepseek:chat").remote
    assert (remote.url, remote.model, remote.key_env) == ("https://api.deepseek.com/v1", "deepseek-chat",
                                                          "DEEPSEEK_API_KEY")
    assert remote.cost(1_000_000, 500_000) == 6.0
    stored = "".join(p.read_text() for p in xuetu_home.rglob("*") if p.is_file())
    assert SECRET not in stored  # the key is read at use time, never written


def test_list_and_show_mark_remote_models(xuetu_home, monkeypatch):
    monkeypatch.delenv("MOONSHOT_API_KEY", raising=False)
    assert cli("create", "kimi:8k", "--preset", "moonshot", "--api-model", "moonshot-v1-8k").exit_code == 0
    listed = cli("list")
    assert "remote: Moonshot" in listed.output and "kimi:8k" in listed.output
    rows = json.loads(cli("list", "--json").output)
    assert rows[0]["remote"] is True
    shown = cli("show", "kimi:8k").output
    assert "https://api.moonshot.cn/v1" in shown and "MOONSHOT_API_KEY (NOT SET)" in shown
    assert PRESETS["moonshot"].pricing in shown  # no price set: where the provider publishes it
    data = json.loads(cli("show", "kimi:8k", "--json").output)
    assert data["remote"]["model"] == "moonshot-v1-8k" and "key" not in data["remote"]


@pytest.mark.parametrize("kwargs,message", [
    ({"preset": "nosuch", "api_model": "m"}, "unknown provider preset"),
    ({"url": "ftp://x", "api_model": "m"}, "http"),
    ({"url": "http://127.0.0.1:1/v1"}, "--api-model"),
    ({"preset": "openai", "api_model": "m", "key_env": "sk-proj-abcdef"}, "NAME of an environment variable"),
    ({"preset": "openai", "api_model": "m", "price_in": -1}, "price_in"),
    ({"preset": "openai", "api_model": "m", "context_length": 0}, "context_length"),
    ({"preset": "openai", "api_model": "m", "batch": 0}, "batch"),
    ({"preset": "openai", "api_model": "m", "retries": -1}, "retries"),
])
def test_bad_remote_specs_say_what_to_fix(kwargs, message):
    with pytest.raises(BadInput, match=message):
        build(**kwargs)


def test_a_key_given_as_the_variable_name_is_refused_without_echoing_it():
    with pytest.raises(BadInput) as err:
        build(preset="openai", api_model="m", key_env=SECRET)
    assert SECRET not in str(err.value)


def test_xuetu_run_streams_from_a_remote_model(xuetu_home, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", SECRET)
    with FakeAPI(key=SECRET) as fake:
        assert cli("create", "fake:echo", "--api", fake.url, "--api-model", "echo", "--key-env", "FAKE_KEY").exit_code == 0
        r = cli("run", "fake:echo", "hello remote")
        assert r.exit_code == 0, r.output
        assert "You said: hello remote" in r.output
        monkeypatch.setenv("FAKE_KEY", "wrong")
        r = cli("run", "fake:echo", "hello")
        assert r.exit_code != 0 and "refused the key in FAKE_KEY" in r.output and "Traceback" not in r.output


def test_an_embedding_preset_takes_the_providers_embedding_model():
    assert build(preset="dashscope", kind="embedding").model == "text-embedding-v3"


def test_a_remote_entry_never_replaces_a_model_with_weights(tiny):
    from xuetu.errors import Conflict
    from xuetu.models.remote import create_remote

    with pytest.raises(Conflict, match="model with weights"):
        create_remote("tiny:latest", preset="ollama", api_model="qwen2.5:0.5b")
    assert resolve("tiny:latest").remote is None and not resolve("tiny:latest").problems()
    create_remote("up:q", preset="ollama", api_model="a")
    assert create_remote("up:q", preset="ollama", api_model="b").remote.model == "b"  # a remote one is updated
