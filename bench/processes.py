"""The processes a run starts, and stopping every one of them whatever happens."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class ProcessFailed(RuntimeError):
    """A process the run needs exited, or never became ready."""


class Processes:
    """Starts processes, each in its own session; `stop_all` (or leaving the `with`) ends them.

    Each gets its graceful signal first (gunicorn SIGTERM, the consumer
    SIGINT), then its whole process group SIGKILL if it lingers, so a
    gunicorn worker never outlives its run.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._started: list[tuple[str, subprocess.Popen, int]] = []
        # "<name> had exited with <code>" for each process that ended before `stop_all`.
        self.exits: list[str] = []

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        stop_signal: int = signal.SIGTERM,
    ) -> subprocess.Popen:
        with open(self.log_path(name), "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started.append((name, process, stop_signal))
        return process

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def check_running(self) -> None:
        for name, process, _ in self._started:
            if process.poll() is not None:
                raise ProcessFailed(
                    f"{name} exited with {process.returncode}; see {self.log_path(name)}"
                )

    def stop_all(self, timeout: float = 20) -> None:
        for name, process, _ in self._started:
            if process.poll() is not None:
                self.exits.append(f"{name} had exited with {process.returncode}")
        for _, process, stop_signal in reversed(self._started):
            if process.poll() is None:
                process.send_signal(stop_signal)
        deadline = time.monotonic() + timeout
        for _, process, _ in self._started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            # The group is the process's own session: a gunicorn master that
            # died first would leave its worker in it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._started.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answers(
    port: int, path: str, *, process: subprocess.Popen, name: str, timeout: float = 60
) -> None:
    """Until GET `path` answers 200; fails at once if `process` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ProcessFailed(f"{name} exited with {process.returncode} before answering")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except (ConnectionError, OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        if time.monotonic() > deadline:
            raise ProcessFailed(f"{name} did not answer GET {path} within {timeout:.0f}s")
        time.sleep(0.1)


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a gunicorn master's workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def only_worker(master_pid: int, name: str, timeout: float = 10) -> int:
    """The pid of the single worker of a one-worker gunicorn master."""
    deadline = time.monotonic() + timeout
    while True:
        workers = child_pids(master_pid)
        if len(workers) == 1:
            return workers[0]
        if time.monotonic() > deadline:
            raise ProcessFailed(f"{name}: expected one gunicorn worker, found {workers}")
        time.sleep(0.1)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def busy_cpu_seconds() -> float:
    """CPU time every process of the machine has used since boot (all cores)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def own_cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (wrk, migrations)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ProcessFailed(f"no VmHWM in /proc/{pid}/status")
