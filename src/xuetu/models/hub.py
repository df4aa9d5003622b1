"""Download model repositories from Hugging Face or its ModelScope mirror.

One code path serves both hubs: list the files (with sizes and checksums), then fetch each
into XUETU_HOME/downloads as `<file>.part`, resuming with an HTTP Range request after an
interruption, and verify it (sha256 for LFS files, git blob sha1 for small files) before it
may enter the store. `XUETU_HUB=modelscope` selects the mirror for users in China;
`HF_ENDPOINT` / `MODELSCOPE_ENDPOINT` point at any mirror (tests use a local fake hub).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from tqdm.auto import tqdm

from xuetu.errors import DownloadError, ModelNotFound
from xuetu.home import inside, xuetu_home
from xuetu.models.checksums import git_blob_sha1, sha256_file

# Weights in safetensors plus what is needed to run and train: config, tokenizer, template, docs.
# A repository is data, never code: no pattern may admit *.py (tests/security/test_fs_code.py checks).
LICENCE_FILES = ["LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "LICENCE.md", "NOTICE"]
WANTED = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken", "*.md", *LICENCE_FILES]
LEGACY_WEIGHTS = ["*.bin"]  # only when a repository has no safetensors
SKIP_DIRS = ("onnx/", "openvino/", "original/", "coreml/", "tflite/")


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None = None
    git_sha1: str | None = None


def hub_name() -> str:
    hub = os.environ.get("XUETU_HUB", "huggingface").strip().lower()
    aliases = {"hf": "huggingface", "huggingface": "huggingface", "ms": "modelscope", "modelscope": "modelscope"}
    if hub not in aliases:
        raise DownloadError(f"XUETU_HUB={hub!r} is not a hub I know", "Use XUETU_HUB=huggingface or XUETU_HUB=modelscope.")
    return aliases[hub]


class HuggingFace:
    name = "huggingface"
    default_revision = "main"

    def __init__(self):
        self.endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        token = os.environ.get("HF_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def list_url(self, repo: str, revision: str) -> str:
        return f"{self.endpoint}/api/models/{repo}/revision/{quote(revision, safe='')}?blobs=true"

    def parse_listing(self, data: dict) -> tuple[str, list[RemoteFile]]:
        files = []
        for s in data.get("siblings", []):
            lfs = s.get("lfs") or {}
            files.append(RemoteFile(s["rfilename"], int(lfs.get("size", s.get("size") or 0)),
                                    sha256=lfs.get("sha256"), git_sha1=None if lfs else s.get("blobId")))
        return data.get("sha", ""), files

    def file_url(self, repo: str, revision: str, path: str) -> str:
        return f"{self.endpoint}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"


class ModelScope:
    name = "modelscope"
    default_revision = "master"

    def __init__(self):
        self.endpoint = os.environ.get("MODELSCOPE_ENDPOINT", "https://www.modelscope.cn").rstrip("/")
        token = os.environ.get("MODELSCOPE_API_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def list_url(self, repo: str, revision: str) -> str:
        return f"{self.endpoint}/api/v1/models/{repo}/repo/files?Revision={quote(revision)}&Recursive=true"

    def parse_listing(self, data: dict) -> tuple[str, list[RemoteFile]]:
        body = data.get("Data") or {}
        files = [RemoteFile(f["Path"], int(f.get("Size") or 0), sha256=f.get("Sha256") or None)
                 for f in body.get("Files", []) if f.get("Type", "blob") == "blob"]
        return body.get("Revision", ""), files

    def file_url(self, repo: str, revision: str, path: str) -> str:
        return f"{self.endpoint}/api/v1/models/{repo}/repo?Revision={quote(revision)}&FilePath={quote(path)}"


HUBS = {"huggingface": HuggingFace, "modelscope": ModelScope}


def select_files(files: list[RemoteFile]) -> list[RemoteFile]:
    """What to fetch: safetensors weights and the files around them, not duplicate formats."""
    def matches(f: RemoteFile, patterns) -> bool:
        name = f.path.rsplit("/", 1)[-1]
        if name.endswith((".py", ".pyc", ".so")):  # code never comes with a model
            return False
        return not f.path.startswith(SKIP_DIRS) and any(fnmatch.fnmatch(name, p) for p in patterns)

    chosen = [f for f in files if matches(f, WANTED)]
    if not any(f.path.endswith(".safetensors") for f in chosen):
        chosen += [f for f in files if matches(f, LEGACY_WEIGHTS)]
    return chosen


def _offline_error(hub, e: Exception) -> DownloadError:
    where = hub.endpoint.split("://", 1)[-1]
    hint = ("Check your network, or set XUETU_HUB=modelscope if you are in China (HF_ENDPOINT for a mirror). "
            "Offline, `xuetu pull smollm2:135m` still works, and `xuetu create NAME --from PATH` adds local files.")
    return DownloadError(f"cannot reach {where} ({type(e).__name__}): no network, or the hub is down", hint)


def _client(hub) -> httpx.Client:
    return httpx.Client(headers={"User-Agent": "xuetu", **hub.headers}, follow_redirects=True,
                        timeout=httpx.Timeout(30.0, read=120.0))


def list_files(repo: str, revision: str | None = None, hub=None) -> tuple[str, list[RemoteFile]]:
    hub = hub or HUBS[hub_name()]()
    revision = revision or hub.default_revision
    try:
        with _client(hub) as client:
            r = client.get(hub.list_url(repo, revision))
    except httpx.TransportError as e:
        raise _offline_error(hub, e) from None
    if r.status_code in (401, 403, 404):
        raise ModelNotFound(f"{repo!r} was not found on {hub.name} (HTTP {r.status_code})",
                            "Check the repository id; gated models need HF_TOKEN / MODELSCOPE_API_TOKEN.")
    if r.status_code != 200:
        raise DownloadError(f"{hub.name} answered HTTP {r.status_code} listing {repo}", "Try again later.")
    return hub.parse_listing(r.json())


def _verify(path: Path, remote: RemoteFile) -> None:
    size = path.stat().st_size
    if remote.size and size != remote.size:
        raise DownloadError(f"{remote.path}: got {size} bytes, expected {remote.size}")
    if remote.sha256 and sha256_file(path) != remote.sha256.lower():
        raise DownloadError(f"{remote.path} failed its sha256 checksum (corrupt download)", "Run the pull again.")
    if remote.git_sha1 and git_blob_sha1(path) != remote.git_sha1.lower():
        raise DownloadError(f"{remote.path} failed its checksum (corrupt download)", "Run the pull again.")


def fetch_file(client: httpx.Client, url: str, part: Path, remote: RemoteFile, progress: bool,
               report=None) -> None:
    """Download into `part`, continuing from the bytes already there."""
    have = part.stat().st_size if part.exists() else 0
    if remote.size and have > remote.size:
        part.unlink()
        have = 0
    if remote.size and have == remote.size:
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    with client.stream("GET", url, headers=headers) as r:
        if r.status_code == 200 and have:  # the server ignored Range: start again
            have = 0
        elif r.status_code not in (200, 206):
            raise DownloadError(f"downloading {remote.path}: HTTP {r.status_code}", "Try again later.")
        bar = tqdm(total=remote.size or None, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=remote.path[-40:], disable=not progress, leave=False)
        done = have
        with open(part, "ab" if have else "wb") as f, bar:
            try:
                for block in r.iter_bytes():  # as it arrives, so an interruption keeps it
                    f.write(block)
                    bar.update(len(block))
                    done += len(block)
                    if report is not None:
                        report(f"pulling {remote.path}", total=remote.size, completed=done)
            except httpx.TransportError as e:
                f.flush()
                raise DownloadError(f"the download of {remote.path} was interrupted at {part.stat().st_size} bytes "
                                    f"({type(e).__name__})", "Run the same pull again: it resumes where it stopped.") from None


def download_repo(repo: str, dest: Path, revision: str | None = None, hub_kind: str | None = None,
                  progress: bool = True, report=None) -> dict:
    """Fetch a repository's model files into `dest`; returns the source record for the manifest."""
    hub = HUBS[hub_kind or hub_name()]()
    revision = revision or hub.default_revision
    commit, files = list_files(repo, revision, hub)
    chosen = select_files(files)
    if not any(f.path.endswith((".safetensors", ".bin")) for f in chosen):
        raise DownloadError(f"{repo} on {hub.name} has no safetensors or .bin weights",
                            "xuetu pulls Hugging Face-format repositories (config.json + safetensors).")
    cache = inside(xuetu_home(), xuetu_home() / "downloads" / hub.name / repo.replace("/", "--") / (commit or revision))
    total = sum(f.size for f in chosen)
    overall = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"pulling {repo}",
                   disable=not progress)
    try:
        with _client(hub) as client, overall:
            for remote in chosen:
                target = inside(dest, dest / remote.path)  # a hostile listing cannot write outside dest
                part = inside(cache, cache / (remote.path + ".part"))
                part.parent.mkdir(parents=True, exist_ok=True)
                fetch_file(client, hub.file_url(repo, commit or revision, remote.path), part, remote, progress, report)
                if report is not None:
                    report(f"verifying {remote.path}")
                try:
                    _verify(part, remote)
                except DownloadError:
                    part.unlink(missing_ok=True)  # never resume from bytes known to be bad
                    raise
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(part, target)
                overall.update(remote.size)
    except httpx.TransportError as e:
        raise _offline_error(hub, e) from None
    shutil.rmtree(cache, ignore_errors=True)
    for parent in (cache.parent, cache.parent.parent):  # tidy empty repo/hub folders
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    return {"type": hub.name, "id": repo, "revision": commit or revision}
