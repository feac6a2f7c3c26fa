"""Run every benchmark in turn, then publish their figures (what `make bench` does).

    .venv/bin/python bench/run_all.py [--only NAME[,NAME...]] [--skip NAME[,NAME...]]
                                      [--no-report] [-- extra arguments for a single --only]

Each script runs with ``--json var/bench/NAME.json``; its output goes to the terminal and to
var/bench/NAME.log. A script that fails still leaves its status (exit code, duration) in
var/bench/NAME.status.json, so the published page says it failed instead of showing the figures
of an older run. Then bench/report.py rewrites the generated parts of docs/PERFORMANCE.md and
docs/RELIABILITY.md. Benchmarks run one after another: they share two cores and would distort
each other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"

# In the order they run: quick, self-contained ones first, the whole-stack runs last.
BENCHMARKS = (
    "ingest_throughput",
    "projection_core",
    "ingest_memory",
    "watchlist",
    "block_scan",
    "api_latency",
    "alert_fanout",
    "chat_fanout",
    "ws_fanout",
    "e2e_latency",
    "soak",
    "chaos",
)


def names(value: str | None) -> list[str]:
    chosen = [n.strip() for n in (value or "").split(",") if n.strip()]
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        )
    return chosen


def run(name: str, extra: list[str]) -> int:
    script = ROOT / "bench" / f"{name}.py"
    figures = OUT / f"{name}.json"
    status_path = OUT / f"{name}.status.json"
    figures.unlink(missing_ok=True)
    command = [sys.executable, str(script), "--json", str(figures), *extra]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    started = time.time()
    with (OUT / f"{name}.log").open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
        code = process.wait()
    status = {
        "name": name,
        "exit_code": code,
        "started_at": started,
        "finished_at": time.time(),
        "figures_written": figures.exists(),
    }
    status_path.write_text(json.dumps(status, indent=2) + "\n", encoding="utf-8")
    print(f"=== {name}: exit {code} after {status['finished_at'] - started:.0f} s", flush=True)
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--skip", help="comma-separated benchmark names")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite the docs")
    parser.add_argument("extra", nargs="*", help="arguments passed to a single --only benchmark")
    args = parser.parse_args()
    chosen = names(args.only) or list(BENCHMARKS)
    skipped = set(names(args.skip))
    chosen = [n for n in chosen if n not in skipped]
    if args.extra and len(chosen) != 1:
        raise SystemExit("extra arguments need exactly one benchmark in --only")
    missing = [n for n in chosen if not (ROOT / "bench" / f"{n}.py").exists()]
    if missing:
        raise SystemExit(f"benchmark script(s) missing: {', '.join(missing)}")
    OUT.mkdir(parents=True, exist_ok=True)

    failed = [name for name in chosen if run(name, args.extra) != 0]
    if not args.no_report:
        subprocess.run([sys.executable, str(ROOT / "bench" / "report.py")], cwd=ROOT, check=True)
    missed = [name for name in chosen if name not in failed and missed_targets(name)]
    for name in missed:
        print(f"{name}: missed {'; '.join(missed_targets(name))}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or missed else 0


def missed_targets(name: str) -> list[str]:
    path = OUT / f"{name}.json"
    if not path.exists():
        return []
    figures = json.loads(path.read_text(encoding="utf-8"))["figures"]
    return [
        f"{f['what']} = {f['measured']} (target {f['target']})"
        for f in figures
        if f["met"] is False
    ]


if __name__ == "__main__":
    raise SystemExit(main())
