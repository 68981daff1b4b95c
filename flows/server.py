"""A local Prefect server in a child process, for ``attnviz serve`` and the end-to-end tests.

This module imports nothing from Prefect: the caller points ``PREFECT_API_URL`` at
the server before Prefect is imported, which is when Prefect reads its settings.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


class ServerError(RuntimeError):
    """The Prefect server did not come up; the message says why and where its log is."""


def healthy(api_url: str) -> bool:
    """Whether a Prefect API answers its health check at ``api_url``."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def local_server(
    port: int = 4200,
    host: str = "127.0.0.1",
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Iterator[str]:
    """Run ``prefect server start`` until the block ends; yields the API URL.

    Parameters
    ----------
    port, host
        Where the server listens (the UI is at ``http://host:port``).
    log
        File for the server's output (default: discarded).
    env
        Environment of the server process (default: this process's), e.g. with its own
        ``PREFECT_HOME``.
    timeout
        Seconds to wait for the server to answer its health check.
    """
    api_url = f"http://{host}:{port}/api"
    if healthy(api_url):
        raise ServerError(
            f"a Prefect server already answers at {api_url}: set PREFECT_API_URL={api_url} "
            "to use it, or choose another port"
        )
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", host]
    command += ["--port", str(port)]
    with open(log or os.devnull, "ab") as output:
        # A session of its own, so stopping it stops the web server it starts too.
        server = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not healthy(api_url):
            if server.poll() is not None:
                raise ServerError(f"the Prefect server exited with {server.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise ServerError(f"the Prefect server did not answer in {timeout:g} s; see {log}")
            time.sleep(0.5)
        yield api_url
    finally:
        stop(server)


def stop(process: subprocess.Popen, grace: float = 30) -> None:
    """Stop a process started in a session of its own, and everything it started."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
