"""``tcr registry serve`` as a real process on a fresh SQLite file, for command-line tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.broker import free_port

TCR = str(Path(sys.executable).with_name("tcr"))


@contextmanager
def registry_process(folder: Path, tokens_file: Path) -> Iterator[str]:
    """The registry serving on a free port; yields its URL, stops it afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
    env |= {
        "TCR_TOKENS_FILE": str(tokens_file),
        "TCR_REGISTRY_DATABASE_URL": f"sqlite:///{folder / 'registry.db'}",
        "TCR_SIGNING_KEY_FILE": str(folder / "signing-key.pem"),
    }
    log_path = folder / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [TCR, "registry", "serve", "--port", str(port), "--no-access-log"],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    output = log_path.read_text("utf-8", errors="replace")
                    pytest.fail(f"the registry did not start:\n{output[-3000:]}")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
