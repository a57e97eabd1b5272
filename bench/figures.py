"""The benchmark's arithmetic and its tables: pure functions, no processes."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


def percentile(samples: Sequence[float], pct: float) -> float:
    """The pct-th percentile, interpolating linearly between the closest ranks.

    The same definition as numpy's default: p0 is the smallest sample, p100
    the largest, p50 of an even count the mean of the middle two.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, not {pct}")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latencies:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def summarize_latencies(seconds: Sequence[float]) -> Latencies:
    return Latencies(
        samples=len(seconds),
        p50_ms=percentile(seconds, 50) * 1000,
        p99_ms=percentile(seconds, 99) * 1000,
        max_ms=max(seconds) * 1000,
    )


@dataclass(frozen=True)
class Settling:
    """How a set of items went from pending to settled, as seen by polling."""

    items: int
    # Seconds from the submit (or from the 202) to the first and the last
    # observation of a settled item.
    first_settled_s: float
    last_settled_s: float
    # Items per second after the first commit (None: all settled at once).
    items_per_s: float | None
    commits_seen: int


def settling(observations: Sequence[tuple[float, int]], items: int, *, start: float) -> Settling:
    """Rate and times from (moment, items settled so far) observations.

    The rate counts the items settled after the first observed commit over
    the time from that commit to the last: the items of the first commit
    were processed before anyone could see them, so counting them would
    overstate the rate (by 2x for a 1000-item batch settled in two chunks).
    """
    settled = [(moment, count) for moment, count in observations if count > 0]
    if not settled or settled[-1][1] != items:
        raise ValueError(f"observations do not reach {items} settled items")
    (first, first_count), (last, _) = settled[0], settled[-1]
    rate = (items - first_count) / (last - first) if last > first else None
    commits = len({count for _, count in settled})
    return Settling(items, first - start, last - start, rate, commits)


@dataclass(frozen=True)
class Row:
    """One figure of the table: the service's value, the reference's where one applies."""

    key: str
    figure: str
    metric: str
    service: float | None
    reference: float | None = None
    # Which way is an improvement: "higher" (throughput) or "lower" (latency, memory).
    better: str = "lower"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """service / reference."""
        if self.service is None or not self.reference:
            return None
        return self.service / self.reference

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def format_value(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_ratio(ratio: float | None) -> str:
    """Two significant digits below 1 (0.023x), two decimals up to 10, none above."""
    if ratio is None:
        return "-"
    if ratio >= 10:
        return f"{ratio:.0f}x"
    if ratio >= 1:
        return f"{ratio:.2f}x"
    return f"{ratio:.2g}x"


def render_table(headers: Sequence[str], lines: Iterable[Sequence[str]], align: str) -> str:
    """Text columns under one header rule; `align` has an "l" or "r" per column."""
    lines = [list(headers), *(list(line) for line in lines)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(headers))]

    def cell(column: int, text: str) -> str:
        if align[column] == "l":
            return text.ljust(widths[column])
        return text.rjust(widths[column])

    rendered = ["  ".join(cell(c, text) for c, text in enumerate(line)).rstrip() for line in lines]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered)


def results_table(rows: Sequence[Row]) -> str:
    """The run's table: a figure's name is printed once, above its metrics."""
    lines = []
    previous = None
    for row in rows:
        name = row.figure if row.figure != previous else ""
        previous = row.figure
        values = [format_value(row.service), format_value(row.reference), format_ratio(row.ratio)]
        lines.append([name, row.metric, *values, row.note])
    headers = ["figure", "metric", "service", "reference", "ratio", "note"]
    return render_table(headers, lines, "llrrrl")


def change(before: float | None, after: float | None, better: str) -> str:
    """'+12% better', '-30% worse', or '-' when either side has no value."""
    if before is None or after is None or before == 0:
        return "-"
    delta = after / before - 1
    if abs(delta) < 0.005:
        return "same"
    improved = delta > 0 if better == "higher" else delta < 0
    return f"{delta:+.0%} {'better' if improved else 'worse'}"


# Share of the CPUs other work may take before a comparison is called noisy.
QUIET_MACHINE = 0.10


def noise_warning(before: dict, after: dict) -> str | None:
    """A warning when other work took a noticeable share of the CPUs in either run."""
    shares = [result["machine"].get("other_cpu_share") for result in (before, after)]
    busy = [share for share in shares if share is not None and share > QUIET_MACHINE]
    if not busy:
        return None
    return (
        f"other work took up to {max(busy):.0%} of the CPUs during these runs: "
        "differences of tens of percent can be noise; run both again and trust what repeats"
    )


def comparison_table(before: dict, after: dict) -> str:
    """Two results side by side, matched on the figures' keys (the `after` order)."""
    before_rows = {row["key"]: row for row in before["rows"]}
    lines = []
    previous = None
    for row in after["rows"]:
        old = before_rows.get(row["key"], {})
        name = row["figure"] if row["figure"] != previous else ""
        previous = row["figure"]
        lines.append(
            [
                name,
                row["metric"],
                format_value(old.get("service")),
                format_value(row["service"]),
                change(old.get("service"), row["service"], row["better"]),
                format_ratio(old.get("ratio")),
                format_ratio(row["ratio"]),
            ]
        )
    headers = ["figure", "metric", "before", "after", "change", "ratio before", "ratio after"]
    return render_table(headers, lines, "llrrlrr")
