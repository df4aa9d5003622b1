"""A local fake of the Hugging Face and ModelScope download APIs, served on 127.0.0.1.

It serves the files of `root/<owner>/<repo>/` with the same listing JSON and Range support
the real hubs have, and can misbehave on request: cut a download short, or corrupt it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_MIN = 1024  # files at least this big are listed as LFS (sha256), smaller ones by git blob id


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, dict]] = []  # (path, headers)
        self.cut_after: dict[str, int] = {}  # file path -> bytes to send before dropping the connection (once)
        self.corrupt: set[str] = set()  # file paths served with a flipped byte
        self.extra_listing: list[dict] = []  # extra siblings to list (e.g. hostile paths)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                hub.requests.append((self.path, dict(self.headers)))
                url = urlparse(self.path)
                parts = [unquote(p) for p in url.path.strip("/").split("/")]
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if parts[:2] == ["api", "models"] and "revision" in parts:  # HF listing
                    return hub._hf_listing(self, "/".join(parts[2:parts.index("revision")]))
                if parts[:3] == ["api", "v1", "models"] and parts[-2:] == ["repo", "files"]:  # ModelScope listing
                    return hub._ms_listing(self, "/".join(parts[3:-2]))
                if parts[:3] == ["api", "v1", "models"] and parts[-1] == "repo":  # ModelScope file
                    return hub._file(self, "/".join(parts[3:-1]), query.get("FilePath", ""))
                if "resolve" in parts:  # HF file
                    i = parts.index("resolve")
                    return hub._file(self, "/".join(parts[:i]), "/".join(parts[i + 2:]))
                self.send_error(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _files(self, repo: str) -> list[Path]:
        folder = self.root / repo
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []

    @staticmethod
    def _json(handler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _hf_listing(self, handler, repo: str) -> None:
        files = self._files(repo)
        if not files:
            return self._json(handler, 404, {"error": "Repository not found"})
        siblings = []
        for p in files:
            data = p.read_bytes()
            rel = p.relative_to(self.root / repo).as_posix()
            entry = {"rfilename": rel, "size": len(data), "blobId": _git_sha1(data)}
            if len(data) >= LFS_MIN:
                entry["lfs"] = {"sha256": _sha256(data), "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        self._json(handler, 200, {"id": repo, "sha": COMMIT, "siblings": siblings + self.extra_listing})

    def _ms_listing(self, handler, repo: str) -> None:
        files = self._files(repo)
        if not files:
            return self._json(handler, 404, {"Code": 10010205001, "Message": "not found"})
        listing = [{"Path": p.relative_to(self.root / repo).as_posix(), "Name": p.name, "Type": "blob",
                    "Size": p.stat().st_size, "Sha256": _sha256(p.read_bytes())} for p in files]
        self._json(handler, 200, {"Code": 200, "Data": {"Files": listing, "Revision": COMMIT}})

    def _file(self, handler, repo: str, rel: str) -> None:
        path = self.root / repo / rel
        if not path.is_file():
            return self._json(handler, 404, {"error": "Entry not found"})
        data = bytearray(path.read_bytes())
        if rel in self.corrupt:
            data[len(data) // 2] ^= 0xFF
        start = 0
        rng = handler.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
        body = bytes(data[start:])
        handler.send_response(206 if rng else 200)
        handler.send_header("Content-Length", str(len(body)))
        if rng:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        cut = self.cut_after.pop(rel, None)
        if cut is not None:
            handler.wfile.write(body[:cut])
            handler.wfile.flush()
            handler.close_connection = True
            import socket

            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.wfile.write(body)
