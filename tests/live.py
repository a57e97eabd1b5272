"""The real service as subprocesses: gunicorn web servers and Huey consumers.

Used by the tests that must see the processes as deployed: end-to-end,
fault injection, the multi-host rehearsal.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.contract import check_response

ROOT = Path(__file__).parent.parent
COLLECTION = "/api/v1/bulk-registrations"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveService:
    """Starts and stops web servers and consumers against one database."""

    def __init__(self, database_url: str, log_dir: Path, **settings: str) -> None:
        self.env = {**os.environ, "DATABASE_URL": database_url, **settings}
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        # Each web server's base URL and its gunicorn master process.
        self.web: dict[str, subprocess.Popen] = {}
        subprocess.run(
            [sys.executable, "-m", "storage.migrations"], cwd=ROOT, env=self.env, check=True
        )

    def _spawn(self, name: str, command: list[str], **env: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            command, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def start_web(self, workers: int = 2) -> str:
        """A gunicorn server on a free loopback port; returns its base URL once it answers."""
        port = free_port()
        process = self._spawn(
            "web",
            [sys.executable, "-m", "gunicorn", "app:app"],
            HOST="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY=str(workers),
        )
        url = f"http://127.0.0.1:{port}"
        self.web[url] = process
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}{COLLECTION}", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer on {url}; see {self.log_dir}")

    def start_consumer(self, **env: str) -> subprocess.Popen:
        return self._spawn("consumer", [sys.executable, "-m", "worker"], **env)

    def stop(self, process: subprocess.Popen, sig: int = signal.SIGINT) -> int:
        if process.poll() is None:
            process.send_signal(sig)
        return process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                # Each process's graceful stop: SIGINT for consumers, SIGTERM for gunicorn.
                is_web = "gunicorn" in process.args
                process.send_signal(signal.SIGTERM if is_web else signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def checked_client(base_url: str) -> httpx.Client:
    """An HTTP client that checks every response against openapi.yaml."""
    return httpx.Client(base_url=base_url, timeout=30, event_hooks={"response": [check_response]})


def wait_until_settled(client: httpx.Client, path: str, timeout: float = 30) -> dict:
    """Poll a batch until no item is pending; returns the batch."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.get(path).json()
        if batch["pending"] == 0:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still has {batch['pending']} pending after {timeout}s")
        time.sleep(0.05)
