"""The benchmark's own arithmetic, parsing and tables (bench/), and that its data fits the app.

Nothing here is timed: the benchmark itself runs with `make bench`.
"""

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bench.__main__ import main as bench_command
from bench.client import COLLECTION, submit_body
from bench.database import Watcher, seed_batches
from bench.figures import (
    Row,
    change,
    comparison_table,
    format_ratio,
    noise_warning,
    percentile,
    results_table,
    settling,
    summarize_latencies,
)
from bench.profiling import parse_collapsed, short_frame, summarize
from bench.run import write_result
from bench.wrk import parse_wrk_output

WRK_STDOUT = """\
Running 10s test @ http://127.0.0.1:8080/api/v1/bulk-registrations/batch-0005
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.14ms    2.01ms  40.12ms   90.00%
    Req/Sec   492.10     30.00   540.00     70.00%
  4921 requests in 10.00s, 9.80MB read
Requests/sec:    492.09
Transfer/sec:      0.98MB
BENCH_WRK {"duration_us":10000000,"requests":4921,"bytes":10276000,\
"errors":{"connect":0,"read":0,"write":0,"status":2,"timeout":1},\
"latency_us":{"p50":7900,"p90":9800,"p99":15250,"max":40120,"mean":8140.0}}
"""


def test_percentile_interpolates_between_the_closest_ranks():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    assert percentile(range(1, 101), 99) == pytest.approx(99.01)


def test_percentile_of_one_sample_is_that_sample():
    assert percentile([7.5], 99) == 7.5


def test_percentile_refuses_no_samples_and_out_of_range_ranks():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_latencies_are_reported_in_milliseconds():
    latencies = summarize_latencies([0.010, 0.020, 0.030])
    assert (latencies.samples, latencies.p50_ms, latencies.max_ms) == (3, 20.0, 30.0)
    assert latencies.p99_ms == pytest.approx(29.8)


def test_settling_rate_leaves_out_the_items_of_the_first_commit():
    observations = [(10.0, 0), (10.1, 500), (10.3, 1000)]
    outcome = settling(observations, 1000, start=9.9)
    assert outcome.items_per_s == pytest.approx(500 / 0.2)
    assert outcome.first_settled_s == pytest.approx(0.2)
    assert outcome.last_settled_s == pytest.approx(0.4)
    assert outcome.commits_seen == 2


def test_a_batch_settled_in_one_commit_has_no_rate_but_an_end_to_end_time():
    outcome = settling([(1.0, 0), (1.25, 1000)], 1000, start=1.0)
    assert outcome.items_per_s is None
    assert outcome.last_settled_s == 0.25


def test_settling_refuses_observations_that_never_reach_every_item():
    with pytest.raises(ValueError):
        settling([(1.0, 0), (2.0, 999)], 1000, start=0)


def test_wrk_output_is_read_from_the_report_line():
    result = parse_wrk_output(WRK_STDOUT)
    assert result.requests == 4921
    assert result.seconds == 10.0
    assert result.requests_per_s == pytest.approx(492.1)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (7.9, 15.25, 40.12)
    assert result.errors == 3


def test_wrk_output_without_a_report_line_is_refused():
    with pytest.raises(ValueError, match="no report line"):
        parse_wrk_output(WRK_STDOUT.split("BENCH_WRK")[0])


def test_a_rows_ratio_is_service_over_reference():
    assert Row("k", "f", "requests/s", 500.0, 2000.0, "higher").ratio == 0.25
    assert Row("k", "f", "p50 ms", 8.0).ratio is None
    assert Row("k", "f", "p50 ms", 8.0, 2.0).as_dict()["ratio"] == 4.0


def test_the_results_table_names_each_figure_once():
    rows = [
        Row("small.rps", "GET 15", "requests/s", 512.3, 9876.6, "higher", "wrk 10s"),
        Row("small.p50_ms", "GET 15", "p50 ms", 7.5, 0.4),
        Row("post.p50_ms", "POST 1000", "p50 ms", 125.0),
    ]
    lines = results_table(rows).splitlines()
    assert lines[0].split() == ["figure", "metric", "service", "reference", "ratio", "note"]
    assert lines[2].split() == ["GET", "15", "requests/s", "512", "9,877", "0.052x", "wrk", "10s"]
    assert lines[3].split() == ["p50", "ms", "7.50", "0.40", "19x"]
    assert lines[4].split() == ["POST", "1000", "p50", "ms", "125", "-", "-"]


def test_a_change_is_better_or_worse_by_the_figures_direction():
    assert change(500, 600, "higher") == "+20% better"
    assert change(10.0, 12.0, "lower") == "+20% worse"
    assert change(10.0, 10.01, "lower") == "same"
    assert change(None, 5, "lower") == "-"


def test_two_results_compare_figure_by_figure():
    before = {"rows": [Row("small.rps", "GET 15", "requests/s", 500, 10000, "higher").as_dict()]}
    after = {
        "rows": [
            Row("small.rps", "GET 15", "requests/s", 1000, 10000, "higher").as_dict(),
            Row("new.p50_ms", "new figure", "p50 ms", 3.0).as_dict(),
        ]
    }
    lines = comparison_table(before, after).splitlines()
    assert lines[2].split()[3:] == ["500", "1,000", "+100%", "better", "0.05x", "0.1x"]
    assert lines[3].split()[-5:] == ["-", "3.00", "-", "-", "-"]


def test_ratios_keep_two_significant_digits():
    assert [format_ratio(r) for r in (0.0234, 0.5, 1.234, 47.27, None)] == [
        "0.023x",
        "0.5x",
        "1.23x",
        "47x",
        "-",
    ]


def test_a_comparison_is_called_noisy_when_other_work_took_the_cpus():
    quiet = {"machine": {"other_cpu_share": 0.03}}
    busy = {"machine": {"other_cpu_share": 0.3}}
    assert noise_warning(quiet, quiet) is None
    assert "30%" in noise_warning(quiet, busy)


def test_a_result_is_written_under_its_time_and_commit_and_as_latest(tmp_path):
    result = {"started_at": "2026-12-03T16:50:01Z", "target": {"commit": "e0dfda3ce8224edc"}}
    path = write_result(result, tmp_path)
    assert path.name == "20261203T165001Z-e0dfda3ce8.json"
    assert json.loads(path.read_text()) == result
    assert (tmp_path / "latest.json").read_text() == path.read_text()


def test_profile_samples_are_grouped_by_where_they_were_taken():
    stacks = parse_collapsed(
        "run (threading.py:10);serve (app/web.py:5);validate (jsonschema/v.py:3) 6\n"
        "run (threading.py:10);serve (app/web.py:5);query (peewee.py:9) 3\n"
        "run (threading.py:10);wait (threading.py:20) 1\n"
    )
    profile = summarize(stacks)
    assert profile.samples == 10
    assert profile.waiting == 1
    assert [(e.name, e.samples) for e in profile.by_self] == [
        ("validate (jsonschema/v.py)", 6),
        ("query (peewee.py)", 3),
    ]
    # Shares are of the 9 working samples.
    assert [(e.name, e.samples) for e in profile.by_package] == [("jsonschema", 6), ("peewee", 3)]
    assert profile.by_package[0].share == pytest.approx(6 / 9)
    # threading.py only starts threads: no entry of its own.
    assert profile.by_inclusive[0].name == "serve (app/web.py)"


def test_a_frame_is_named_by_its_function_and_short_file():
    site = "/x/.venv/lib/python3.11/site-packages"
    assert short_frame(f"validate ({site}/jsonschema/validators.py:12)") == (
        "validate (jsonschema/validators.py)"
    )
    assert short_frame("get_batch (/work/repo/handlers/batches.py:40)", [Path("/work/repo")]) == (
        "get_batch (handlers/batches.py)"
    )
    assert short_frame("<module> (<frozen runpy>)") == "<module> (<frozen runpy>)"
    # The target's own virtualenv lives inside it: its files are library files.
    inside = "/work/repo/.venv/lib/python3.11/site-packages/peewee.py:40"
    assert short_frame(f"Insert.__sql__ ({inside})", [Path("/work/repo")]) == (
        "Insert.__sql__ (peewee.py)"
    )


def test_wrappers_are_left_out_of_the_inclusive_view_but_the_projects_code_is_not():
    stacks = parse_collapsed(
        "outer (/lib/python3.11/site-packages/web/a.py:1);"
        "wrap (/lib/python3.11/site-packages/web/b.py:1);"
        "handle (/repo/handlers/x.py:1);"
        "step (/repo/storage/y.py:1);"
        "dumps (/lib/python3.11/site-packages/json/c.py:1) 4\n"
        "outer (/lib/python3.11/site-packages/web/a.py:1);"
        "validate (/lib/python3.11/site-packages/jsonschema/v.py:1);"
        "validate (/lib/python3.11/site-packages/jsonschema/v.py:1) 6\n"
    )
    names = [entry.name for entry in summarize(stacks, [Path("/repo")]).by_inclusive]
    # `wrap` passes everything on to `handle`; `step` too, but it is the project's own.
    assert names[:2] == ["outer (web/a.py)", "validate (jsonschema/v.py)"]
    assert set(names[2:]) == {"handle (handlers/x.py)", "step (storage/y.py)", "dumps (json/c.py)"}


def test_the_benchmarks_batches_are_accepted_by_the_app(client):
    body = submit_body(3, 15, today=date.today())
    response = client.post(COLLECTION, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 202
    mentors = {item["mentor_id"] for item in json.loads(body)["items"]}
    assert len(mentors) == 15


@pytest.mark.skipif(
    not os.environ["DATABASE_URL"].startswith("sqlite:"), reason="the benchmark seeds SQLite"
)
def test_seeded_batches_are_served_like_submitted_ones(client):
    path = Path(os.environ["DATABASE_URL"].removeprefix("sqlite:///"))
    seed_batches(path, 30, newest=datetime.now(UTC))

    listed = client.get(COLLECTION, params={"page": 2, "limit": 20}).json()
    assert listed["pagination"]["total"] == 30
    assert [batch["batch_id"] for batch in listed["data"]][:2] == ["batch-0010", "batch-0009"]
    batch = client.get(f"{COLLECTION}/batch-0007").json()
    assert (batch["status"], batch["items"][0]["status"]) == ("completed", "success")

    watcher = Watcher(path)
    try:
        assert (watcher.newest_batch(), watcher.settled_after(0), watcher.pending()) == (30, 30, 0)
    finally:
        watcher.close()


def _saved_result(tmp_path: Path, name: str, requests_per_s: float) -> Path:
    result = {
        "started_at": "2026-12-03T16:50:01Z",
        "elapsed_s": 105.0,
        "target": {"path": "/repo", "commit": "e0dfda3ce8", "describe": "v1", "dirty": False},
        "machine": {"cpus": 2, "load_before": [0.5, 0.4, 0.3], "other_cpu_share": 0.02},
        "rows": [Row("small.rps", "GET 15", "requests/s", requests_per_s, 1e4, "higher").as_dict()],
    }
    path = tmp_path / name
    path.write_text(json.dumps(result))
    return path


def test_a_saved_result_is_shown_and_compared_from_the_command_line(tmp_path, capsys):
    before = _saved_result(tmp_path, "before.json", 400)
    after = _saved_result(tmp_path, "after.json", 500)

    assert bench_command(["show", str(after)]) == 0
    assert "0.05x" in capsys.readouterr().out

    assert bench_command(["compare", str(before), str(after)]) == 0
    shown = capsys.readouterr().out
    assert "+25% better" in shown
    assert "note:" not in shown
