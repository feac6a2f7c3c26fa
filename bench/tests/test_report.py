"""make bench publishes figures only from runs: bench/results.py writes them, bench/report.py
puts them between the markers of the docs and nowhere else."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.results import Results  # noqa: E402


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in report.DOCS:
        shutil.copy(ROOT / "docs" / name, folder / name)
    return folder


def test_committed_docs_have_a_block_for_every_benchmark():
    for name, benchmarks in report.DOCS.items():
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        for bench in benchmarks:
            assert f"<!-- bench:{bench} start -->" in text, (name, bench)
            assert f"<!-- bench:{bench} end -->" in text, (name, bench)
            assert (ROOT / "bench" / f"{bench}.py").exists(), bench


def test_figures_go_between_the_markers_with_machine_and_date(tmp_path, docs):
    results = tmp_path / "results"
    run = Results("ws_fanout", "Dashboard fan-out", command="bench/ws_fanout.py --clients 5")
    run.add("p99 | pipes escaped", "112 ms", target="<= 250 ms", met=True)
    run.add("p50", "60 ms")
    run.note("one note")
    run.save(results / "ws_fanout.json")
    (results / "ws_fanout.status.json").write_text(json.dumps({"exit_code": 0}))
    before = (docs / "PERFORMANCE.md").read_text(encoding="utf-8")

    assert report.main(["--results", str(results), "--docs", str(docs)]) == 0

    after = (docs / "PERFORMANCE.md").read_text(encoding="utf-8")
    block = report.block(after, "ws_fanout")
    assert re.match(
        r"_Last run \d{4}-\d\d-\d\d \d\d:\d\d UTC, 0\.0 min: `bench/ws_fanout.py --clients 5`\._",
        block,
    )
    assert "_Machine: " in block and "CPUs" in block and "load average" in block
    assert "| p99 \\| pipes escaped | <= 250 ms | 112 ms | met |" in block
    assert "| p50 |  | 60 ms |  |" in block
    assert "- one note" in block
    summary = report.block(after, "summary")
    assert "| ws_fanout | p99 \\| pipes escaped | <= 250 ms | 112 ms | met |" in summary
    assert "| ws_fanout | p50 |" not in summary  # no target, not in the summary
    # Only the blocks change: the hand-written prose is the same text before and after.
    assert (
        before.split("<!-- bench:summary start -->")[0]
        == after.split("<!-- bench:summary start -->")[0]
    )
    assert report.block(after, "api_latency") == report.block(before, "api_latency")


def test_a_failed_run_replaces_old_figures_with_the_failure(tmp_path, docs):
    results = tmp_path / "results"
    results.mkdir()
    (results / "soak.status.json").write_text(
        json.dumps({"exit_code": 3, "started_at": 1_764_100_000.0})
    )
    report.main(["--results", str(results), "--docs", str(docs)])
    text = (docs / "RELIABILITY.md").read_text(encoding="utf-8")
    assert "**failed with exit code 3 before writing figures**" in report.block(text, "soak")
    summary = report.block((docs / "PERFORMANCE.md").read_text(encoding="utf-8"), "summary")
    assert "| soak | the run failed before writing figures | | | **failed** |" in summary


def test_a_missed_target_is_marked(tmp_path, docs):
    results = tmp_path / "results"
    run = Results("api_latency", "REST API latency")
    run.add("entity + date range p95", "59 ms", target="<= 50 ms", met=False)
    run.save(results / "api_latency.json")
    report.main(["--results", str(results), "--docs", str(docs)])
    text = (docs / "PERFORMANCE.md").read_text(encoding="utf-8")
    assert "| entity + date range p95 | <= 50 ms | 59 ms | **missed** |" in text
