"""llama.cpp's own `llama-server`, built once per machine for benchmarks/serve.py, from the llama.cpp sources inside
llama-cpp-python's source package (the same llama.cpp our engine runs), with the Makefile's CPU flags.

    .venv/bin/python benchmarks/llama_server.py     # prints the binary's path, building it first if absent

It downloads llama-cpp-python's sdist from the package index (the only network it needs) and compiles with
cmake: about 10 minutes on 2 cores, once; the binary is kept under ~/.cache/xuetu/llama-server/<version>/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

FLAGS = ["-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",  # as the Makefile
         "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
         "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF"]


def home() -> Path:
    return Path.home() / ".cache" / "xuetu" / "llama-server" / metadata.version("llama-cpp-python")


def binary() -> Path | None:
    """The built llama-server, from XUETU_LLAMA_SERVER or the cache; None when there is none."""
    given = os.environ.get("XUETU_LLAMA_SERVER")
    path = Path(given) if given else home() / "llama-server"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def build() -> Path:
    found = binary()
    if found:
        return found
    if shutil.which("cmake") is None:
        raise RuntimeError("cmake is needed to build llama-server (apt install cmake)")
    version = metadata.version("llama-cpp-python")
    with tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
        print(f"building llama-server from llama-cpp-python {version}'s sources (about 10 minutes on 2 cores, once)",
              file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={version}", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src = next(Path(tmp).glob("llama_cpp_python-*/vendor/llama.cpp"))
        subprocess.run(["cmake", "-S", str(src), "-B", str(src / "build"), *FLAGS], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(src / "build"), "-j", str(os.cpu_count() or 1), "--target",
                        "llama-server"], check=True, stdout=subprocess.DEVNULL)
        out = home()
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / "build" / "bin" / "llama-server", out / "llama-server")
    return out / "llama-server"


if __name__ == "__main__":
    print(build())
