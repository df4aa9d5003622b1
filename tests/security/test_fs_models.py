"""/api/create, /api/copy and /api/pull over real HTTP: no server paths, no silent replacement of a model.

Each refusal is checked for its status, for a message that says what to do, for no server path in it, and for an
unchanged XUETU_HOME (snapshot before and after).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from security.conftest import snapshot


def _post(server, path: str, body: dict):
    with server.client() as c:
        return c.post(path, json={"stream": False, **body})


def _no_paths(text: str, home: Path) -> None:
    """The server's own paths stay on the server (a client's input may be quoted back)."""
    for path in (str(home), str(home.resolve()), str(Path.home())):
        assert path not in text, text


@pytest.mark.parametrize("source", ["~", "/etc", "../../..", "~/.ssh", "models/../../etc", "C:\\Windows"])
def test_create_from_a_server_path_is_refused(keyless, source):
    before = snapshot(keyless.home)
    r = _post(keyless, "/api/create", {"model": "stolen:v1", "from": source})
    assert r.status_code == 403, r.text
    message = r.json()["error"]
    assert "import folder" in message and "xuetu create" in message
    _no_paths(message, keyless.home)
    assert snapshot(keyless.home) == before


def test_create_from_an_unknown_model_is_not_found(keyless):
    r = _post(keyless, "/api/create", {"model": "copy:v1", "from": "no-such-model:v9"})
    assert r.status_code == 404 and "import folder" in r.json()["error"]


def test_create_from_an_absolute_model_folder_is_refused(keyless):
    folder = next((keyless.home / "models" / "tiny").iterdir())  # a real model folder on the server
    before = snapshot(keyless.home)
    r = _post(keyless, "/api/create", {"model": "stolen:v1", "from": str(folder)})
    assert r.status_code == 403 and "import folder" in r.json()["error"]
    _no_paths(r.json()["error"], keyless.home)
    assert snapshot(keyless.home) == before


def test_create_over_an_existing_model_is_a_conflict(keyless):
    before = snapshot(keyless.home)
    r = _post(keyless, "/api/create", {"model": "smollm2:135m", "from": "tiny:latest", "system": "Say PWNED."})
    assert r.status_code == 409 and "smollm2:135m" in r.json()["error"] and "already exists" in r.json()["error"]
    asked = _post(keyless, "/api/create", {"model": "smollm2:135m", "from": "tiny:latest", "overwrite": True})
    assert asked.status_code == 403 and "replace" in asked.json()["error"]
    assert snapshot(keyless.home) == before


def test_copy_onto_an_existing_model_is_a_conflict(keyless):
    before = snapshot(keyless.home)
    r = _post(keyless, "/api/copy", {"source": "tiny:latest", "destination": "smollm2:135m"})
    assert r.status_code == 409 and "smollm2:135m" in r.json()["error"]
    assert _post(keyless, "/api/copy", {"source": "tiny:latest", "destination": "smollm2:135m", "overwrite": True}).status_code == 403
    assert snapshot(keyless.home) == before


@pytest.mark.parametrize("name", ["/etc", "~", "./models", "http://127.0.0.1:9/x", "bad name!!", "a/../../b",
                                  "x.gguf", ""])
def test_pull_takes_names_not_paths(keyless, name):
    before = snapshot(keyless.home)
    r = _post(keyless, "/api/pull", {"model": name})
    assert r.status_code == 400, (name, r.status_code, r.text)
    assert r.json()["error"]
    _no_paths(r.json()["error"], keyless.home)
    assert snapshot(keyless.home) == before


def test_create_copy_and_pull_by_name_still_work(keyless):
    assert _post(keyless, "/api/create", {"model": "pirate:v1", "from": "tiny:latest", "system": "Arr."}).status_code == 200
    assert _post(keyless, "/api/copy", {"source": "pirate:v1", "destination": "pirate:v2"}).status_code == 200
    assert _post(keyless, "/api/pull", {"model": "all-minilm"}).json()["status"] == "success"
    names = [m["name"] for m in keyless.client().get("/api/tags").json()["models"]]
    assert {"pirate:v1", "pirate:v2"} <= set(names)


def test_overwrite_with_the_servers_permission(serve, sec_home):
    server = serve("--allow-overwrite")
    r = _post(server, "/api/create", {"model": "smollm2:135m", "from": "tiny:latest", "overwrite": True})
    assert r.status_code == 200, r.text
    manifest = json.loads((sec_home / "models" / "smollm2" / "135m" / "manifest.json").read_text())
    assert manifest["copied_from"] == "tiny:latest"


@pytest.fixture
def import_dir(tmp_path, tiny_dir) -> Path:
    root = tmp_path / "imports"
    shutil.copytree(tiny_dir, root / "tinyimp")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "config.json").write_text("{}")
    os.symlink(tmp_path / "secret", root / "escape")
    return root


def test_import_folder_entry_becomes_a_model(serve, sec_home, import_dir):
    server = serve("--import-dir", str(import_dir))
    r = _post(server, "/api/create", {"model": "imported:v1", "from": "tinyimp"})
    assert r.status_code == 200, r.text
    assert (sec_home / "models" / "imported" / "v1" / "manifest.json").is_file()


@pytest.mark.parametrize("source", ["../secret", "escape", "/etc", "tinyimp/../../secret", "~"])
def test_import_folder_is_confined(serve, sec_home, import_dir, source):
    server = serve("--import-dir", str(import_dir))
    before = snapshot(sec_home)
    r = _post(server, "/api/create", {"model": "imported:v1", "from": source})
    assert r.status_code == 403, r.text
    assert "import folder" in r.json()["error"]
    _no_paths(r.json()["error"], sec_home)
    assert str(import_dir) not in r.json()["error"]
    assert snapshot(sec_home) == before


def test_import_folder_size_cap(serve, sec_home, import_dir):
    server = serve("--import-dir", str(import_dir), "--max-import", "1KB")
    before = snapshot(sec_home)
    r = _post(server, "/api/create", {"model": "imported:v1", "from": "tinyimp"})
    assert r.status_code == 400 and "import cap" in r.json()["error"]
    assert snapshot(sec_home) == before
