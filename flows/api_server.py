"""Prefect servers in child processes that end with this one, for the CLI and the tests.

Without ``PREFECT_API_URL`` Prefect starts a temporary server of its own at the
first flow run and stops it at exit; a process killed any other way (``kill -9``,
SIGTERM) leaves that server running, about 200 MB each. :func:`start_api` starts
the same server itself, tied to this process (:func:`flows.lifetime.tied`), and
:func:`local_server` does so for ``prefect server start``.

This module imports nothing from Prefect: the caller points ``PREFECT_API_URL`` at
the server before Prefect is imported, which is when Prefect reads its settings.
"""

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from flows.lifetime import tied


class ServerError(RuntimeError):
    """The Prefect server did not come up; the message says why and where its log is."""


def healthy(api_url: str) -> bool:
    """Whether a Prefect API answers its health check at ``api_url``."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_api(timeout: float = 120) -> str | None:
    """Give this process's flow runs a temporary Prefect server that dies with the process.

    It is the server Prefect would start (Prefect's own command and settings for it,
    on a free port), but tied to this process, so that not even ``kill -9`` leaves it
    behind; it is stopped at exit, after Prefect's own exit handlers have sent their
    last logs. Call it before importing Prefect, which reads ``PREFECT_API_URL`` then.
    Starting it takes as long as Prefect's own (3-7 s on two cores).

    Parameters
    ----------
    timeout
        Seconds to wait for the server to answer its health check.

    Returns
    -------
    str | None
        The API URL it set as ``PREFECT_API_URL``; ``None`` when it started nothing
        because ``PREFECT_API_URL`` is set, or because Prefect is already imported
        (a test harness, a notebook) and keeps the API it has.

    Raises
    ------
    ServerError
        The server exited or did not answer in ``timeout`` seconds.
    """
    if os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/api"
    command = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error"]
    command += ["--lifespan", "on"]
    # As prefect.server.api.server.SubprocessASGIServer sets them: no UI, and only the
    # services a temporary server runs.
    env = {**os.environ, "PREFECT_UI_ENABLED": "0"}
    env |= {"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    # A session of its own, so that Ctrl-C reaches only this process: the run then
    # still has its server while it records how it ended.
    server = subprocess.Popen(tied(command), env=env, start_new_session=True)
    # Registered before Prefect is imported, so it runs after Prefect's exit handlers.
    atexit.register(stop, server, 5)
    _wait_until_healthy(server, api_url, timeout, "its output above")
    os.environ["PREFECT_API_URL"] = api_url
    # Prefect would derive a UI address from the API's and log links to a UI that this
    # server does not serve; with its own temporary server it logs none.
    os.environ.setdefault("PREFECT_UI_URL", "")
    return api_url


@contextmanager
def local_server(
    port: int = 4200,
    host: str = "127.0.0.1",
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Iterator[str]:
    """Run ``prefect server start`` until the block ends, or this process dies; yields the API URL.

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
    # `prefect server start --port N` does not tell its UI: the UI would call the API at
    # the default port (4200), failing, or showing another server's runs if one is there.
    env = {**(os.environ if env is None else env)}
    env.setdefault("PREFECT_UI_API_URL", api_url)
    with open(log or os.devnull, "ab") as output:
        # A session of its own, so stopping it stops the web server it starts too.
        server = subprocess.Popen(
            tied(command),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(server, api_url, timeout, str(log))
        yield api_url
    finally:
        stop(server)


def _wait_until_healthy(
    server: subprocess.Popen[bytes], api_url: str, timeout: float, log: str
) -> None:
    """Wait until ``server`` answers at ``api_url``; if it exits or is late, say where to look."""
    deadline = time.monotonic() + timeout
    while not healthy(api_url):
        if server.poll() is not None:
            raise ServerError(f"the Prefect server exited with {server.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise ServerError(f"the Prefect server did not answer in {timeout:g} s; see {log}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """Stop a process started in a session of its own, and everything it started."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
