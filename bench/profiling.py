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
    for root in roots:
        prefix = f"{root}/"
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    else:
        path = _LIBRARY_ROOTS.sub("", path)
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
    # Where the working samples were taken, by the innermost frame's package and function.
    by_package: list[Entry]
    by_self: list[Entry]
    # Working samples with the function anywhere on the stack (once per stack),
    # leaving out the frames that only start threads and loops, and of a chain
    # of wrappers on exactly the same stacks, all but the innermost.
    by_inclusive: list[Entry]


def _file(frame: str) -> str:
    match = _FRAME.match(frame)
    return match["file"] if match else ""


def _package(frame: str) -> str:
    file = _file(frame)
    return file.split("/", 1)[0].removesuffix(".py") if "/" in file or file else frame


def summarize(
    stacks: list[tuple[list[str], int]], roots: Iterable[Path] = (), top: int = TOP_ENTRIES
) -> Profile:
    roots = list(roots)
    total = sum(count for _, count in stacks)
    waiting = 0
    packages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    depth: Counter[str] = Counter()
    for frames, count in stacks:
        named = [short_frame(frame, roots) for frame in frames]
        if _file(named[-1]) in _WAITING_FILES:
            waiting += count
            continue
        packages[_package(named[-1])] += count
        own[named[-1]] += count
        for name, level in {name: level for level, name in enumerate(named)}.items():
            if not _PLUMBING_FILES.match(_file(name)):
                inclusive[name] += count
                depth[name] += level * count

    def entries(counter: Counter[str], limit: int) -> list[Entry]:
        return [Entry(name, n, n / total) for name, n in counter.most_common(limit)]

    innermost: dict[int, str] = {}
    for name, count in inclusive.items():
        kept = innermost.get(count)
        if kept is None or depth[name] / count > depth[kept] / count:
            innermost[count] = name
    wrappers = Counter({name: count for count, name in innermost.items()})
    return Profile(total, waiting, entries(packages, 10), entries(own, top), entries(wrappers, top))


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
    waiting = f"{profile.waiting / profile.samples:.1%}" if profile.samples else "-"
    lines.append(["waiting", waiting, "threads parked on a lock, queue or selector"])
    table = render_table(["where", "samples", "function (file)"], lines, "lrl")
    return f"{profile.samples} samples at {SAMPLES_PER_SECOND}/s, shares of all of them\n{table}"


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
    roots = [target.root, Path(sys.prefix)]
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
