"""The real download code against a local fake hub (this machine has no network)."""

import shutil

import pytest

from helpers.fakehub import COMMIT, FakeHub
from xuetu import models
from xuetu.errors import DownloadError, ModelNotFound
from xuetu.home import xuetu_home


@pytest.fixture
def hub(tmp_path, tiny_dir, monkeypatch):
    root = tmp_path / "hubroot"
    shutil.copytree(tiny_dir, root / "acme" / "Tiny-Chat")
    (root / "acme" / "Tiny-Chat" / "pytorch_model.bin").write_bytes(b"duplicate weights, not wanted" * 50)
    with FakeHub(root) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", fake.url)
        yield fake


def _downloads(fake):
    return [p for p, _ in fake.requests if "/resolve/" in p or "FilePath=" in p]


def test_pull_from_huggingface(hub):
    ref = models.pull("acme/Tiny-Chat", progress=False)
    assert ref.name == "acme/tiny-chat:latest"
    assert ref.source == {"type": "huggingface", "id": "acme/Tiny-Chat", "revision": COMMIT}
    assert (ref.hf_dir / "model.safetensors").is_file()
    assert not (ref.hf_dir / "pytorch_model.bin").exists()  # safetensors present: no duplicate .bin
    assert ref.problems(deep=True) == []
    assert ref.kind == "chat"
    # hf.co/ URLs and resolve() with the repo id find the same model
    assert models.resolve("hf.co/acme/Tiny-Chat").name == ref.name
    n = len(_downloads(hub))
    again = models.pull("acme/Tiny-Chat", progress=False)  # same commit: nothing downloaded
    assert again.name == ref.name and len(_downloads(hub)) == n


def test_pull_from_modelscope(hub, monkeypatch):
    monkeypatch.setenv("XUETU_HUB", "modelscope")
    ref = models.pull("acme/Tiny-Chat", progress=False)
    assert ref.source["type"] == "modelscope"
    assert ref.problems(deep=True) == []
    assert all("FilePath=" in p for p in _downloads(hub))


def test_interrupted_download_resumes(hub):
    hub.cut_after["model.safetensors"] = 5000
    with pytest.raises(DownloadError, match="interrupted") as e:
        models.pull("acme/Tiny-Chat", progress=False)
    assert "again" in e.value.hint
    assert models.list_models() == []  # nothing half-written is visible
    parts = list((xuetu_home() / "downloads").rglob("model.safetensors.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == 5000
    ref = models.pull("acme/Tiny-Chat", progress=False)
    resumed = [h for p, h in hub.requests if p.endswith("/model.safetensors")][-1]
    assert resumed.get("Range") == "bytes=5000-"
    assert ref.problems(deep=True) == []
    assert not (xuetu_home() / "downloads" / "huggingface" / "acme--Tiny-Chat").exists()


def test_corrupt_download_is_rejected(hub):
    hub.corrupt.add("model.safetensors")
    with pytest.raises(DownloadError, match="checksum"):
        models.pull("acme/Tiny-Chat", progress=False)
    assert models.list_models() == []
    assert not list((xuetu_home() / "downloads").rglob("*.part"))  # bad bytes are not kept for resuming
    hub.corrupt.clear()
    assert models.pull("acme/Tiny-Chat", progress=False).problems(deep=True) == []


def test_small_file_checked_by_git_blob_id(hub):
    hub.corrupt.add("config.json")
    with pytest.raises(DownloadError, match="checksum"):
        models.pull("acme/Tiny-Chat", progress=False)


def test_hostile_listing_cannot_write_outside(hub, tmp_path):
    hub.extra_listing.append({"rfilename": "../../../escape.json", "size": 2, "blobId": "x"})
    with pytest.raises(PermissionError):
        models.pull("acme/Tiny-Chat", progress=False)
    assert not list(tmp_path.rglob("escape.json"))


def test_unknown_repo(hub):
    with pytest.raises(ModelNotFound, match="not found on huggingface"):
        models.pull("acme/Nope", progress=False)


def test_offline_is_one_clear_sentence(xuetu_home):
    with pytest.raises(DownloadError) as e:
        models.pull("qwen2.5:0.5b", progress=False)  # conftest points the hubs at a closed port
    assert e.value.message.startswith("cannot reach 127.0.0.1:9")
    assert "XUETU_HUB=modelscope" in e.value.hint
    assert models.list_models() == []


def test_alias_pulls_mapped_repo(hub, tmp_path, monkeypatch):
    from xuetu.models import aliases

    monkeypatch.setitem(aliases.ALIASES, "tiny:1m", aliases.Alias("acme/Tiny-Chat", "acme/Tiny-Chat",
                                                                    params={"temperature": 0.1}))
    ref = models.pull("tiny:1m", progress=False)
    assert ref.name == "tiny:1m" and ref.params == {"temperature": 0.1}


def test_bad_hub_setting(monkeypatch):
    monkeypatch.setenv("XUETU_HUB", "github")
    with pytest.raises(DownloadError, match="XUETU_HUB"):
        models.pull("qwen2.5:0.5b", progress=False)
