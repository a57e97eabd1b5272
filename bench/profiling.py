"""Where the web worker (and the consumer) spend their time under load: py-spy samples.

The service runs as in a benchmark run; py-spy attaches to the running
processes from outside (no change to the code measured) while wrk loads the
15-item GET, then while a client submits 1000-item batches back to back.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from bench.client import Client
from bench.figures import render_table
from bench.processes import Processes
from bench.run import RESULTS_DIR, BenchmarkRun, Plan, Target
from bench.wrk import run_wrk

SAMPLES_PER_SECOND = 100
TOP_ENTRIES = 20
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# Where a file's short name starts: inside a virtualenv or the standard library.
_LIBRARY_ROOTS = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) format: `outer;...;innermost count` per line."""
    stacks = []
    for line in text.splitlines():
        if not line.strip():
            continue
        frames, count = line.rsplit(" ", 1)
        stacks.append((frames.split(";"), int(count)))
    return stacks


def short_frame(frame: str, roots: Iterable[Path] = ()) -> str:
    """`dumps (/…/site-packages/json/encoder.py:12)` -> `dumps (json/encoder.py)`."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    if _LIBRARY_ROOTS.match(path):
        path = _LIBRARY_ROOTS.sub("", path, count=1)
    else:
        for root in roots:
            prefix = f"{root}/"
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
    return f"{match['function']} ({path})"


# A thread parked on a lock, a queue or a selector is waiting, not working;
# py-spy cannot always tell, so such samples are counted apart.
_WAITING_FILES = {"threading.py", "queue.py", "selectors.py"}
# Frames that only start processes, threads and loops: on nearly every stack.
_PLUMBING_FILES = re.compile(
    r"^(threading\.py|<frozen runpy>|gunicorn/|uvicorn_worker/|uvicorn/_compat\.py"
    r"|asyncio/(runners|base_events|events)\.py|anyio/_backends/|concurrent/futures/)"
)


@dataclass(frozen=True)
class Entry:
    name: str
    samples: int
    share: float


@dataclass(frozen=True)
class Profile:
    samples: int
    waiting: int
    # Shares are of the working samples (all but the waiting ones): where the
    # innermost frame was, by package and by function.
    by_package: list[Entry]
    by_self: list[Entry]
    # The function anywhere on the stack (once per stack). Left out: frames
    # that only start threads and loops, and library frames that pass nearly
    # all their samples on to one callee (wrappers, middleware chains).
    by_inclusive: list[Entry]


# A frame passing at least this share of its samples to one callee is a wrapper.
_PASS_THROUGH = 0.95


def _file(frame: str) -> str:
    match = _FRAME.match(frame)
    return match["file"] if match else ""


def _package(frame: str) -> str:
    file = _file(frame)
    return file.split("/", 1)[0].removesuffix(".py") if file else frame


def summarize(
    stacks: list[tuple[list[str], int]], roots: Iterable[Path] = (), top: int = TOP_ENTRIES
) -> Profile:
    roots = list(roots)
    own_code = f"{roots[0]}/" if roots else None
    total = sum(count for _, count in stacks)
    waiting = 0
    packages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    calls: Counter[tuple[str, str]] = Counter()
    # The measured project's own functions are always shown.
    target_frames: set[str] = set()
    for frames, count in stacks:
        named = [short_frame(frame, roots) for frame in frames]
        if own_code is not None:
            target_frames.update(
                name
                for frame, name in zip(frames, named, strict=True)
                if _file(frame).startswith(own_code) and not _LIBRARY_ROOTS.match(_file(frame))
            )
        if _file(named[-1]) in _WAITING_FILES:
            waiting += count
            continue
        packages[_package(named[-1])] += count
        own[named[-1]] += count
        for name in set(named):
            inclusive[name] += count
        for caller, callee in set(pairwise(named)):
            if caller != callee:
                calls[caller, callee] += count

    busiest_callee: Counter[str] = Counter()
    for (caller, _), count in calls.items():
        busiest_callee[caller] = max(busiest_callee[caller], count)
    working = total - waiting
    kept = Counter(
        {
            name: count
            for name, count in inclusive.items()
            if not _PLUMBING_FILES.match(_file(name))
            and (busiest_callee[name] < _PASS_THROUGH * count or name in target_frames)
        }
    )

    def entries(counter: Counter[str], limit: int) -> list[Entry]:
        return [Entry(name, n, n / working) for name, n in counter.most_common(limit)]

    return Profile(total, waiting, entries(packages, 10), entries(own, top), entries(kept, top))


def profile_table(profile: Profile) -> str:
    lines = []
    for title, entries in (
        ("package", profile.by_package),
        ("self", profile.by_self),
        ("inclusive", profile.by_inclusive),
    ):
        lines += [
            [title if i == 0 else "", f"{entry.share:.1%}", entry.name]
            for i, entry in enumerate(entries)
        ]
    table = render_table(["where", "share", "function (file)"], lines, "lrl")
    waiting = profile.waiting / profile.samples if profile.samples else 0
    return (
        f"{profile.samples} samples at {SAMPLES_PER_SECOND}/s per thread; shares of the "
        f"working ones ({waiting:.0%} were of threads parked on a lock, queue or selector)\n"
        f"{table}"
    )


def _py_spy() -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("py-spy", path=search)
    if found is None:
        raise SystemExit("py-spy is not installed: `make bench-profile` installs it")
    return found


class Sampler:
    """py-spy recording one process for a fixed time, into a collapsed-stack file."""

    def __init__(self, pid: int, seconds: float, output: Path) -> None:
        self.output = output
        command = [
            _py_spy(),
            "record",
            f"--pid={pid}",
            f"--duration={max(1, round(seconds))}",
            f"--rate={SAMPLES_PER_SECOND}",
            "--format=raw",
            "--function",
            "--full-filenames",
            f"--output={output}",
        ]
        with open(output.with_suffix(".log"), "wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def running(self) -> bool:
        return self._process.poll() is None

    def stacks(self) -> list[tuple[list[str], int]]:
        if self._process.wait(timeout=120) != 0 or not self.output.exists():
            log = self.output.with_suffix(".log").read_text(errors="replace")
            raise RuntimeError(f"py-spy failed:\n{log[-2000:]}")
        return parse_collapsed(self.output.read_text())


def profile(target_root: Path, plan: Plan) -> None:
    target = Target.at(target_root)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="bulkreg-profile-"))
    roots = [target.root]
    report = [f"profile of {target.describe} ({target.commit[:10]}) at {target.root}, {stamp}"]
    seconds = plan.wrk_seconds
    processes = Processes(work_dir)
    benchmark = BenchmarkRun(target, replace(plan, seed_batches=0), work_dir, processes)
    try:
        with processes:
            benchmark.start_service()
            with Client(benchmark.service_port) as client:
                batch_id = benchmark.submit(client, plan.small_items).json()["batch_id"]
            benchmark.watcher.wait_until_idle(quiet_seconds=0, timeout=60)
            url = f"http://127.0.0.1:{benchmark.service_port}/api/v1/bulk-registrations/{batch_id}"
            connections = plan.wrk_connections
            run_wrk(url, seconds=plan.warmup_seconds, connections=connections)

            get = Sampler(benchmark.web_worker, seconds, RESULTS_DIR / f"profile-{stamp}-get.txt")
            load = run_wrk(url, seconds=seconds + 1, connections=connections)
            report.append(
                f"\nGET /{{batch_id}}, {plan.small_items} items, web worker "
                f"({load.requests_per_s:.0f} requests/s under the profiler)"
            )
            report.append(profile_table(summarize(get.stacks(), roots)))

            web = Sampler(benchmark.web_worker, seconds, RESULTS_DIR / f"profile-{stamp}-post.txt")
            consumer = Sampler(
                benchmark.consumer.pid, seconds, RESULTS_DIR / f"profile-{stamp}-consumer.txt"
            )
            submitted = 0
            started = time.perf_counter()
            with Client(benchmark.service_port) as client:
                while web.running():
                    benchmark.submit(client, plan.large_items)
                    submitted += 1
            rate = submitted / (time.perf_counter() - started)
            for title, sampler in (("web worker", web), ("consumer", consumer)):
                report.append(
                    f"\nPOST /, {plan.large_items} items back to back, {title} "
                    f"({rate:.1f} submits/s under the profiler)"
                )
                report.append(profile_table(summarize(sampler.stacks(), roots)))
    except BaseException:
        print(f"\nthe profile failed; its logs are kept in {work_dir}", file=sys.stderr)
        for line in processes.exits:
            print(line, file=sys.stderr)
        raise
    finally:
        benchmark.close()
    shutil.rmtree(work_dir)
    text = "\n".join(report) + "\n"
    (RESULTS_DIR / "profile-latest.txt").write_text(text)
    print(text)
    print(f"collapsed stacks (flamegraph input) in {RESULTS_DIR}/profile-{stamp}-*.txt")
