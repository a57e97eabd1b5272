"""Serve the API and process batches on one machine: `make run`.

Starts the web tier (gunicorn) and one consumer (`python -m worker`) and
stops both together: Ctrl-C, SIGTERM or SIGHUP (the terminal going away)
stops each gracefully (gunicorn lets in-flight requests finish, the consumer
finishes its current chunk), and if either exits on its own the other is
stopped too. Should this process itself be killed outright, the kernel stops
the children (Linux's parent-death signal), so nothing keeps the port.
"""

import ctypes
import signal
import subprocess
import sys
import time

# How each child is asked to stop gracefully.
_GRACEFUL = {"web": signal.SIGTERM, "worker": signal.SIGINT}
_STOP_TIMEOUT_SECONDS = 45


def _stop_with_parent(signum: int):
    """For the child: receive `signum` when this process dies, however it dies."""

    def arrange() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)

    return arrange


_PR_SET_PDEATHSIG = 1


def main() -> int:
    commands = {
        "web": [sys.executable, "-m", "gunicorn", "app:app"],
        "worker": [sys.executable, "-m", "worker"],
    }
    # Own sessions: a terminal's Ctrl-C reaches this process only, which then
    # stops each child the way that child stops cleanly.
    children = {
        name: subprocess.Popen(
            command, start_new_session=True, preexec_fn=_stop_with_parent(_GRACEFUL[name])
        )
        for name, command in commands.items()
    }
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    while not stopping and all(child.poll() is None for child in children.values()):
        time.sleep(0.2)

    for name, child in children.items():
        if child.poll() is None:
            child.send_signal(_GRACEFUL[name])
    deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
    for child in children.values():
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
