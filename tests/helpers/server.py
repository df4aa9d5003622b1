"""Run `xuetu serve` as a real process on 127.0.0.1 and a free port, for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, home: Path, *args: str, key: str | None = None, env: dict | None = None,
                 port: int | None = None):
        self.port = port or free_port()  # a port given: a server started again where a page still points
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = key
        self.home = home
        cmd = [sys.executable, "-m", "xuetu", "serve", "--port", str(self.port), *args]
        if key:
            cmd += ["--api-key", key]
        full_env = {**os.environ, "XUETU_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.log = open(home / f"server-{self.port}.log", "a")
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def wait(self, timeout: float = 60) -> "ServerProcess":
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError(self.output())

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=120, **kw)

    def output(self) -> str:
        self.log.flush()
        return (self.home / f"server-{self.port}.log").read_text()

    def kill(self) -> None:
        """Gone at once, as a crash or a pulled plug: open streams are cut, not finished."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
