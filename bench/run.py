"""One benchmark run: the service and the reference started, measured and stopped.

The service runs as deployed (gunicorn with one uvicorn worker, the
consumer beside it, validation on) on a throwaway SQLite database; the
reference is a bare Starlette app on the same gunicorn and worker class,
answering the service's own bytes from memory. Load comes from other
processes: wrk, and this one's sequential client.
"""

import base64
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import database
from bench.client import COLLECTION, Client, Reply, expect, submit_body
from bench.database import SettlingWatch, Watcher
from bench.figures import Row, results_table, settling, summarize_latencies
from bench.processes import (
    Processes,
    busy_cpu_seconds,
    cpu_seconds,
    free_port,
    only_worker,
    own_cpu_seconds,
    peak_rss_mib,
    wait_until_answers,
)
from bench.wrk import WrkResult, run_wrk

INSTRUMENT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = INSTRUMENT_ROOT / "bench" / "results"
# The settings README.md documents: any set in the environment reaches the
# service, and is recorded with the result.
SERVICE_SETTINGS = (
    "PROGRAMME_TIMEZONE",
    "MAX_BODY_BYTES",
    "CONSUMER_THREADS",
    "CONSUMER_MAX_POLL_SECONDS",
    "CHUNK_SIZE",
    "TASK_ITEM_BUDGET",
    "LEASE_SECONDS",
    "QUEUE_GRACE_SECONDS",
    "RECONCILE_SECONDS",
    "ACCESS_LOG",
)
# DESIGN.md §9: pickup is measured on a service idle for at least 3 s.
IDLE_SECONDS = 3.5


@dataclass(frozen=True)
class Plan:
    """How much of each measurement a run makes."""

    wrk_seconds: float = 10
    warmup_seconds: float = 2
    # wrk: one thread, two connections per core.
    wrk_connections: int = 2 * (os.cpu_count() or 1)
    seed_batches: int = 100_000
    deep_page: int = 1000
    small_items: int = 15
    large_items: int = 1000
    get_large_samples: int = 50
    post_samples: int = 30
    pickup_samples: int = 5
    concurrent_batches: int = 20
    concurrent_items: int = 100


QUICK = Plan(
    wrk_seconds=2,
    warmup_seconds=1,
    seed_batches=10_000,
    deep_page=250,
    get_large_samples=10,
    post_samples=5,
    pickup_samples=2,
)


@dataclass(frozen=True)
class Target:
    """The checkout being measured, with its own virtualenv."""

    root: Path
    commit: str
    describe: str
    dirty: bool

    @property
    def python(self) -> Path:
        return self.root / ".venv" / "bin" / "python"

    @classmethod
    def at(cls, root: Path) -> "Target":
        root = root.resolve()

        def git(*args: str) -> str:
            command = ["git", "-C", str(root), *args]
            return subprocess.run(command, capture_output=True, text=True, check=True).stdout

        status = git("status", "--porcelain", "--untracked-files=no")
        target = cls(
            root=root,
            commit=git("rev-parse", "HEAD").strip(),
            describe=git("describe", "--always", "--tags", "--dirty").strip(),
            dirty=bool(status.strip()),
        )
        if not target.python.exists():
            raise SystemExit(f"{target.python} is missing: run `make -C {root} setup` first")
        return target


@dataclass
class Measurements:
    """Everything a run measured, before it becomes rows."""

    pickup_s: list[float] = field(default_factory=list)
    post_s: list[float] = field(default_factory=list)
    single: dict = field(default_factory=dict)
    concurrent: dict = field(default_factory=dict)
    wrk: dict[str, dict[str, WrkResult]] = field(default_factory=dict)
    get_large_s: dict[str, list[float]] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    response_bytes: dict[str, int] = field(default_factory=dict)
    # Share of the machine's CPU time that went to processes other than this
    # run's while it measured: how noisy the figures may be.
    other_cpu_share: float | None = None
    notes: list[str] = field(default_factory=list)


class BenchmarkRun:
    def __init__(self, target: Target, plan: Plan, work_dir: Path, processes: Processes) -> None:
        self.target = target
        self.plan = plan
        self.work_dir = work_dir
        self.processes = processes
        self.database_path = work_dir / "bulkreg.db"
        self.service_port = free_port()
        self.reference_port = free_port()
        self.today = datetime.now(UTC).date()
        self.measured = Measurements()
        self._batches_submitted = 0
        self.paths: dict[str, str] = {}
        self.watcher: Watcher | None = None

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()

    # -- the processes -----------------------------------------------------------------

    def _env(self, port: int, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.database_path}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            **extra,
        }

    def start_service(self) -> None:
        self._cpu_at_start = (time.monotonic(), busy_cpu_seconds(), own_cpu_seconds())
        env = self._env(self.service_port)
        python = str(self.target.python)
        with open(self.processes.log_path("migrations"), "wb") as log:
            subprocess.run(
                [python, "-m", "storage.migrations"],
                cwd=self.target.root,
                env=env,
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if self.plan.seed_batches:
            database.seed_batches(
                self.database_path, self.plan.seed_batches, newest=datetime.now(UTC)
            )
        self.web = self.processes.start(
            "web", [python, "-m", "gunicorn", "app:app"], cwd=self.target.root, env=env
        )
        self.consumer = self.processes.start(
            "consumer",
            [python, "-m", "worker"],
            cwd=self.target.root,
            env=env,
            stop_signal=signal.SIGINT,
        )
        wait_until_answers(
            self.service_port, f"{COLLECTION}?limit=1", process=self.web, name="the service"
        )
        self.web_worker = only_worker(self.web.pid, "the service")
        self.watcher = Watcher(self.database_path)

    def start_reference(self, captured: Path) -> None:
        command = [
            str(self.target.python),
            "-m",
            "gunicorn",
            f"--config={self.target.root / 'gunicorn.conf.py'}",
            f"--pythonpath={INSTRUMENT_ROOT}",
            "bench.reference_app:app",
        ]
        env = self._env(self.reference_port, BENCH_CAPTURED=str(captured))
        self.reference = self.processes.start("reference", command, cwd=self.work_dir, env=env)
        wait_until_answers(
            self.reference_port, self.paths["small"], process=self.reference, name="the reference"
        )
        self.reference_worker = only_worker(self.reference.pid, "the reference")

    # -- the measurements --------------------------------------------------------------

    def _next_body(self, items: int) -> bytes:
        self._batches_submitted += 1
        return submit_body(self._batches_submitted, items, today=self.today)

    def submit(self, client: Client, items: int) -> Reply:
        reply = client.request("POST", COLLECTION, self._next_body(items))
        return expect(reply, 202, f"submitting {items} items")

    def measure_pickup(self) -> None:
        """202 received on an idle service, to the first item of that batch settled."""
        items = self.plan.small_items
        for _ in range(self.plan.pickup_samples):
            self.watcher.wait_until_idle(quiet_seconds=IDLE_SECONDS, timeout=120)
            with (
                SettlingWatch(self.database_path, items=items, timeout=60) as watch,
                Client(self.service_port) as client,
            ):
                reply = self.submit(client, items)
            first_settled = next(moment for moment, count in watch.observations if count > 0)
            self.measured.pickup_s.append(first_settled - reply.received_at)
        self.paths["small"] = f"{COLLECTION}/{reply.json()['batch_id']}"

    def measure_single_batch(self) -> None:
        """One large batch on an idle consumer: submit to every item settled."""
        items = self.plan.large_items
        self.watcher.wait_until_idle(quiet_seconds=1, timeout=120)
        with SettlingWatch(self.database_path, items=items, timeout=120) as watch:
            started = time.perf_counter()
            with Client(self.service_port) as client:
                reply = self.submit(client, items)
        outcome = settling(watch.observations, items, start=started)
        self.measured.single = {**asdict(outcome), "accepted_s": reply.received_at - started}
        self.paths["large"] = f"{COLLECTION}/{reply.json()['batch_id']}"

    def measure_concurrent_batches(self) -> None:
        """Many small batches submitted at once, each from its own connection."""
        count, items = self.plan.concurrent_batches, self.plan.concurrent_items
        bodies = [self._next_body(items) for _ in range(count)]
        self.watcher.wait_until_idle(quiet_seconds=1, timeout=120)
        gate = threading.Barrier(count + 1, timeout=60)
        failures: list[BaseException] = []
        accepted: list[float] = []

        def submit(body: bytes) -> None:
            try:
                with Client(self.service_port) as client:
                    gate.wait()
                    reply = client.request("POST", COLLECTION, body)
                    accepted.append(expect(reply, 202, "concurrent submit").received_at)
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=submit, args=(body,)) for body in bodies]
        with SettlingWatch(self.database_path, items=count * items, timeout=180) as watch:
            for thread in threads:
                thread.start()
            gate.wait()
            started = time.perf_counter()
            for thread in threads:
                thread.join()
            if failures:
                raise failures[0]
        outcome = settling(watch.observations, count * items, start=started)
        self.measured.concurrent = {**asdict(outcome), "accepted_s": max(accepted) - started}

    def measure_post_latency(self) -> None:
        """Consecutive large submits, while the consumer works through the earlier ones."""
        with Client(self.service_port) as client:
            for _ in range(self.plan.post_samples):
                self.measured.post_s.append(self.submit(client, self.plan.large_items).seconds)
        self.watcher.wait_until_idle(quiet_seconds=0, timeout=600)

    def capture_responses(self) -> Path:
        """The service's bytes for every GET the reference answers."""
        self.paths["list_first"] = COLLECTION
        self.paths["list_deep"] = f"{COLLECTION}?page={self.plan.deep_page}"
        captured = {}
        with Client(self.service_port) as client:
            for name, path in self.paths.items():
                reply = expect(client.request("GET", path), 200, f"GET {path}")
                self.measured.response_bytes[path] = len(reply.body)
                captured[path] = {
                    "status": reply.status,
                    "headers": reply.headers,
                    "body": base64.b64encode(reply.body).decode(),
                }
                if name == "list_deep" and not reply.json()["data"]:
                    self.measured.notes.append(f"page {self.plan.deep_page} is past the end")
        path = self.work_dir / "captured.json"
        path.write_text(json.dumps(captured))
        return path

    def measure_wrk(self, name: str) -> None:
        results = {}
        for side, port in (("service", self.service_port), ("reference", self.reference_port)):
            url = f"http://127.0.0.1:{port}{self.paths[name]}"
            connections = self.plan.wrk_connections
            run_wrk(url, seconds=self.plan.warmup_seconds, connections=connections)
            results[side] = run_wrk(url, seconds=self.plan.wrk_seconds, connections=connections)
        self.measured.wrk[name] = results

    def measure_get_large(self) -> None:
        path = self.paths["large"]
        for side, port in (("service", self.service_port), ("reference", self.reference_port)):
            with Client(port) as client:
                for _ in range(3):
                    expect(client.request("GET", path), 200, f"GET {path}")
                self.measured.get_large_s[side] = [
                    expect(client.request("GET", path), 200, f"GET {path}").seconds
                    for _ in range(self.plan.get_large_samples)
                ]

    def measure_memory(self) -> None:
        self.processes.check_running()
        if only_worker(self.web.pid, "the service") != self.web_worker:
            self.measured.notes.append("the service's web worker was restarted during the run")
        self.measured.peak_rss_mib = {
            "web": peak_rss_mib(self.web_worker),
            "reference": peak_rss_mib(self.reference_worker),
            "consumer": peak_rss_mib(self.consumer.pid),
        }

    def measure_other_work(self) -> None:
        """How much CPU time processes other than this run's took while it measured."""
        started, busy_at_start, own_at_start = self._cpu_at_start
        ours = own_cpu_seconds() - own_at_start
        for pid in (self.web.pid, self.web_worker, self.consumer.pid):
            ours += cpu_seconds(pid)
        for pid in (self.reference.pid, self.reference_worker):
            ours += cpu_seconds(pid)
        available = (time.monotonic() - started) * (os.cpu_count() or 1)
        others = busy_cpu_seconds() - busy_at_start - ours
        self.measured.other_cpu_share = max(0.0, others / available)

    def measure(self) -> None:
        self.start_service()
        self.measure_pickup()
        self.measure_single_batch()
        self.measure_concurrent_batches()
        self.measure_post_latency()
        self.start_reference(self.capture_responses())
        for name in ("small", "list_first", "list_deep"):
            self.measure_wrk(name)
        self.measure_get_large()
        self.measure_memory()
        self.measure_other_work()

    # -- the result --------------------------------------------------------------------

    def rows(self) -> list[Row]:
        plan, measured = self.plan, self.measured
        rows = []
        for name, figure in (
            ("small", f"GET /{{batch_id}}, {plan.small_items} items"),
            ("list_first", "GET / list, page 1"),
            ("list_deep", f"GET / list, page {plan.deep_page}"),
        ):
            service, reference = measured.wrk[name]["service"], measured.wrk[name]["reference"]
            note = f"wrk {plan.wrk_seconds:g}s x {plan.wrk_connections} conn"
            if service.errors or reference.errors:
                note += f"; ERRORS service {service.errors}, reference {reference.errors}"
            rows += [
                Row(
                    f"{name}.rps",
                    figure,
                    "requests/s",
                    service.requests_per_s,
                    reference.requests_per_s,
                    "higher",
                    note,
                ),
                Row(f"{name}.p50_ms", figure, "p50 ms", service.p50_ms, reference.p50_ms),
                Row(f"{name}.p99_ms", figure, "p99 ms", service.p99_ms, reference.p99_ms),
            ]
        service = summarize_latencies(measured.get_large_s["service"])
        reference = summarize_latencies(measured.get_large_s["reference"])
        figure = f"GET /{{batch_id}}, {plan.large_items} items"
        note = f"{service.samples} sequential requests"
        rows += [
            Row("large.p50_ms", figure, "p50 ms", service.p50_ms, reference.p50_ms, note=note),
            Row("large.p99_ms", figure, "p99 ms", service.p99_ms, reference.p99_ms),
        ]
        post = summarize_latencies(measured.post_s)
        figure = f"POST /, {plan.large_items} items"
        note = f"{post.samples} consecutive requests, to the 202"
        rows += [
            Row("post.p50_ms", figure, "p50 ms", post.p50_ms, note=note),
            Row("post.p99_ms", figure, "p99 ms", post.p99_ms),
        ]
        for key, figure, outcome in (
            ("single", f"processing 1 x {plan.large_items} items", measured.single),
            (
                "concurrent",
                f"processing {plan.concurrent_batches} x {plan.concurrent_items} items",
                measured.concurrent,
            ),
        ):
            rate_note = (
                f"{outcome['commits_seen']} commits seen; "
                f"last 202 at {outcome['accepted_s'] * 1000:.0f} ms"
            )
            rows += [
                Row(
                    f"{key}.items_per_s",
                    figure,
                    "items/s",
                    outcome["items_per_s"],
                    better="higher",
                    note=rate_note,
                ),
                Row(
                    f"{key}.end_to_end_ms",
                    figure,
                    "end-to-end ms",
                    outcome["last_settled_s"] * 1000,
                    note="submit to last item settled",
                ),
            ]
        pickup = summarize_latencies(measured.pickup_s)
        figure = "pickup, idle service"
        rows += [
            Row(
                "pickup.p50_ms",
                figure,
                "p50 ms",
                pickup.p50_ms,
                note=f"{pickup.samples} batches, 202 to first item settled",
            ),
            Row("pickup.max_ms", figure, "max ms", pickup.max_ms),
        ]
        rss = measured.peak_rss_mib
        rows += [
            Row("memory.web_mib", "peak RSS", "web worker MiB", rss["web"], rss["reference"]),
            Row("memory.consumer_mib", "peak RSS", "consumer MiB", rss["consumer"]),
        ]
        return rows

    def result(
        self, rows: list[Row], *, started_at: datetime, elapsed_s: float, load_before: list[float]
    ) -> dict:
        wrk = {
            name: {
                side: {**asdict(result), "requests_per_s": result.requests_per_s}
                for side, result in sides.items()
            }
            for name, sides in self.measured.wrk.items()
        }
        return {
            "schema": 1,
            "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "elapsed_s": round(elapsed_s, 1),
            "target": {
                "path": str(self.target.root),
                "commit": self.target.commit,
                "describe": self.target.describe,
                "dirty": self.target.dirty,
            },
            "machine": {
                "cpus": os.cpu_count(),
                "kernel": platform.release(),
                "python": platform.python_version(),
                "load_before": load_before,
                "load_after": list(os.getloadavg()),
                "other_cpu_share": self.measured.other_cpu_share,
            },
            "plan": asdict(self.plan),
            "settings": {name: os.environ[name] for name in SERVICE_SETTINGS if name in os.environ},
            "rows": [row.as_dict() for row in rows],
            "notes": self.measured.notes,
            "details": {
                "paths": self.paths,
                "response_bytes": self.measured.response_bytes,
                "wrk": wrk,
                "pickup_ms": [round(s * 1000, 2) for s in self.measured.pickup_s],
                "post_ms": [round(s * 1000, 2) for s in self.measured.post_s],
                "get_large_ms": {
                    side: [round(s * 1000, 2) for s in samples]
                    for side, samples in self.measured.get_large_s.items()
                },
                "single": self.measured.single,
                "concurrent": self.measured.concurrent,
                "peak_rss_mib": self.measured.peak_rss_mib,
                "poll_interval_ms": database.POLL_SECONDS * 1000,
            },
        }


def write_result(result: dict, results_dir: Path = RESULTS_DIR) -> Path:
    """bench/results/<time>-<commit>.json, and the same as latest.json."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["started_at"].replace("-", "").replace(":", "")
    path = results_dir / f"{stamp}-{result['target']['commit'][:10]}.json"
    text = json.dumps(result, indent=2) + "\n"
    path.write_text(text)
    (results_dir / "latest.json").write_text(text)
    return path


def headline(result: dict) -> str:
    target, machine = result["target"], result["machine"]
    state = "with uncommitted changes" if target["dirty"] else "clean"
    others = machine.get("other_cpu_share")
    noise = "" if others is None else f", other work {others:.0%} of the CPUs"
    return (
        f"bulkreg benchmark: {target['describe']} ({target['commit'][:10]}, {state}) "
        f"at {target['path']}\n"
        f"{result['started_at']}, {machine['cpus']} cpus, "
        f"load {machine['load_before'][0]:.2f} before{noise}, "
        f"{result['elapsed_s']:.0f}s; ratio = service / reference"
    )


def run(target_root: Path, plan: Plan) -> Path:
    target = Target.at(target_root)
    started_at, started, load_before = datetime.now(UTC), time.monotonic(), list(os.getloadavg())
    work_dir = Path(tempfile.mkdtemp(prefix="bulkreg-bench-"))
    processes = Processes(work_dir)
    benchmark = BenchmarkRun(target, plan, work_dir, processes)
    print(f"measuring {target.root} ({target.describe}); work files in {work_dir}")
    try:
        with processes:
            benchmark.measure()
    except BaseException:
        print(f"\nthe run failed; its database and logs are kept in {work_dir}", file=sys.stderr)
        for line in processes.exits:
            print(line, file=sys.stderr)
        raise
    finally:
        benchmark.close()
    rows = benchmark.rows()
    result = benchmark.result(
        rows, started_at=started_at, elapsed_s=time.monotonic() - started, load_before=load_before
    )
    shutil.rmtree(work_dir)
    path = write_result(result)
    print()
    print(headline(result))
    print(results_table(rows))
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"\nwritten to {path} and {path.with_name('latest.json')}")
    return path
