"""`make run`'s launcher: the web tier and the consumer start and stop together."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.live import COLLECTION, ROOT, free_port


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


@pytest.fixture
def launched(tmp_path):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1"}
    subprocess.run([sys.executable, "-m", "storage.migrations"], cwd=ROOT, env=env, check=True)
    launcher = subprocess.Popen(
        [sys.executable, "serve.py"],
        cwd=ROOT,
        env=env,
        stdout=open(tmp_path / "serve.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}{COLLECTION}"
    for _ in range(150):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    children = children_of(launcher.pid)
    assert len(children) == 2, "gunicorn and the consumer"
    yield launcher, children, url
    for pid in [launcher.pid, *children]:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    launcher.wait()


def wait_until_gone(pids: list[int]) -> list[int]:
    for _ in range(150):
        if not any(alive(pid) for pid in pids):
            return []
        time.sleep(0.2)
    return [pid for pid in pids if alive(pid)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_both_cleanly(launched, signum):
    launcher, children, _ = launched
    launcher.send_signal(signum)
    assert launcher.wait(60) == 0
    assert wait_until_gone(children) == []


def test_a_killed_launcher_takes_its_children_with_it(launched):
    launcher, children, url = launched
    launcher.kill()
    launcher.wait()
    assert wait_until_gone(children) == []
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=1)
