"""python -m bench {run,profile,compare}: see bench/__init__.py and README.md."""

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

from bench import run
from bench.figures import Row, comparison_table, noise_warning, results_table


def _stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP unwind the run, which stops every process it started.

    SIGINT is set explicitly: a shell starting this in the background would
    have it ignored.
    """

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)


def load_result(name: str) -> dict:
    """A result file, or the newest result of a commit (any ref git knows: a tag, HEAD~1)."""
    path = Path(name)
    if path.is_file():
        return json.loads(path.read_text())
    command = ["git", "-C", str(run.INSTRUMENT_ROOT), "rev-parse", "--verify", f"{name}^{{commit}}"]
    found = subprocess.run(command, capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"{name} is neither a result file nor a commit")
    commit = found.stdout.strip()
    for candidate in sorted(run.RESULTS_DIR.glob(f"*-{commit[:10]}.json"), reverse=True):
        return json.loads(candidate.read_text())
    raise SystemExit(f"no result in {run.RESULTS_DIR} for {name} ({commit[:10]}); bench it first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "measure a checkout and its reference; print and save the table"),
        ("profile", "sample where the web worker spends its time under load"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--target",
            type=Path,
            default=run.INSTRUMENT_ROOT,
            help="the checkout to measure, with its .venv (default: this one)",
        )
        command.add_argument(
            "--quick", action="store_true", help="short runs and few samples: a smoke test"
        )
    show = commands.add_parser("show", help="the table of a saved result")
    show.add_argument(
        "result", nargs="?", default=str(run.RESULTS_DIR / "latest.json"), help="default: latest"
    )
    compare = commands.add_parser("compare", help="two results side by side")
    compare.add_argument("before", help="a result file, or a commit whose newest result to use")
    compare.add_argument("after", help="likewise")
    args = parser.parse_args(argv)

    if args.command == "show":
        result = load_result(args.result)
        rows = [Row(**{k: v for k, v in row.items() if k != "ratio"}) for row in result["rows"]]
        print(f"{run.headline(result)}\n{results_table(rows)}")
        return 0
    if args.command == "compare":
        before, after = load_result(args.before), load_result(args.after)
        print(f"before: {run.headline(before)}\nafter:  {run.headline(after)}\n")
        print(comparison_table(before, after))
        if warning := noise_warning(before, after):
            print(f"\nnote: {warning}")
        return 0

    _stop_on_signals()
    plan = run.QUICK if args.quick else run.Plan()
    try:
        if args.command == "run":
            run.run(args.target, plan)
        else:
            from bench import profiling

            profiling.profile(args.target, plan)
    except KeyboardInterrupt:
        print("interrupted; everything the run started is stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
