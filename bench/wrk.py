"""Load from a separate process: wrk, read through its Lua `done()` hook."""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPORT_SCRIPT = Path(__file__).with_name("wrk_report.lua")
_MARKER = "BENCH_WRK "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    # Socket errors and responses >= 400; any of them spoils the figure.
    errors: int

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds


def parse_wrk_output(stdout: str) -> WrkResult:
    """The figures from wrk's stdout, as printed by wrk_report.lua."""
    for line in stdout.splitlines():
        if line.startswith(_MARKER):
            report = json.loads(line[len(_MARKER) :])
            break
    else:
        raise ValueError("wrk printed no report line; was it run with wrk_report.lua?")
    latency = report["latency_us"]
    return WrkResult(
        requests=report["requests"],
        seconds=report["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors=sum(report["errors"].values()),
    )


def run_wrk(url: str, *, seconds: float, connections: int, threads: int = 1) -> WrkResult:
    """GET `url` over `connections` keep-alive connections for `seconds`."""
    command = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={REPORT_SCRIPT}",
        url,
    ]
    finished = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    return parse_wrk_output(finished.stdout)
