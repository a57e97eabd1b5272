"""`make conformance`: fuzz the running service against the spec it serves.

Starts the real service (gunicorn and a consumer) on a free loopback port
with a throwaway database, runs Schemathesis against each base path's served
openapi.json with every check and phase on (conformance/schemathesis.toml),
writes a JUnit report per base path under conformance/reports/, and stops
everything it started, also when the run fails or is interrupted. Exits
non-zero if any run found a failure.
"""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers.routes import CANONICAL_BASE_PATH, DOUBLED_BASE_PATH  # noqa: E402
from tests.live import LiveService  # noqa: E402

CONFIG = ROOT / "conformance" / "schemathesis.toml"
REPORTS = ROOT / "conformance" / "reports"
MOUNTS = {"canonical": CANONICAL_BASE_PATH, "doubled": DOUBLED_BASE_PATH}


def fuzz(base_url: str, name: str, base_path: str, extra_args: list[str]) -> int:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}{base_path}/openapi.json",
        "--url",
        f"{base_url}{base_path}",
        "--report",
        "junit",
        "--report-junit-path",
        str(REPORTS / f"{name}.xml"),
        *extra_args,
    ]
    print(f"\n=== {name}: {base_path} ===", flush=True)
    return subprocess.run(command, cwd=ROOT).returncode


def main() -> int:
    # SIGTERM unwinds like Ctrl-C, so the finally below always stops the service.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    REPORTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bulkreg-conformance-") as scratch:
        database_url = os.environ.get("CONFORMANCE_DATABASE_URL", f"sqlite:///{scratch}/db.sqlite")
        service = LiveService(database_url, Path(scratch))
        try:
            base_url = service.start_web(workers=2)
            service.start_consumer()
            results = {
                name: fuzz(base_url, name, base_path, sys.argv[1:])
                for name, base_path in MOUNTS.items()
            }
        finally:
            service.stop_all()
    for name, code in results.items():
        print(f"{name}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    return 0 if all(code == 0 for code in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
