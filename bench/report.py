"""Publish the figures of the last benchmark runs into the docs.

    .venv/bin/python bench/report.py [--results var/bench]

Reads what bench/run_all.py left in var/bench (NAME.json figures, NAME.status.json exit codes)
and rewrites, in docs/PERFORMANCE.md and docs/RELIABILITY.md, only the text between
``<!-- bench:NAME start -->`` and ``<!-- bench:NAME end -->``, plus the summary table between
``<!-- bench:summary start/end -->`` markers. The prose around the markers is written by hand
and carries no figures; every figure in a generated block comes from a run, with the date and
the machine it ran on. A benchmark with no result keeps its previous block, so running one
benchmark (`make bench ONLY=soak`) leaves the others' figures in place.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = {
    "PERFORMANCE.md": (
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
    ),
    "RELIABILITY.md": ("soak", "chaos"),
}


def load(results: Path, name: str) -> tuple[dict | None, dict | None]:
    def read(path: Path) -> dict | None:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    return read(results / f"{name}.json"), read(results / f"{name}.status.json")


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine_line(machine: dict, load_at_start: list[float]) -> str:
    def load(values: list[float]) -> str:
        return " / ".join(f"{x:.1f}" for x in values) or "unknown"

    return (
        f"{machine.get('cpus')} CPUs ({machine.get('cpu_model') or 'unknown CPU'}), "
        f"{machine.get('memory_gib')} GiB, {machine.get('system')}, Python {machine.get('python')}, "
        f"host `{machine.get('hostname')}`; load average (1 / 5 / 15 min) "
        f"{load(load_at_start)} at the start, {load(machine.get('load_average', []))} at the end"
    )


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


def render(name: str, figures: dict | None, status: dict | None) -> str | None:
    if figures is None and status is None:
        return None
    lines: list[str] = []
    if figures is None:
        lines.append(
            f"_Last run {when(status['started_at'])}: **failed with exit code "
            f"{status['exit_code']} before writing figures**; its output is in "
            f"`var/bench/{name}.log` on the machine that ran it._"
        )
        return "\n".join(lines)
    duration = figures["finished_at"] - figures["started_at"]
    exit_note = ""
    if status is not None and status["exit_code"] != 0:
        exit_note = f" The script exited with code {status['exit_code']}."
    lines.append(
        f"_Last run {when(figures['started_at'])}, {duration / 60:.1f} min: "
        f"`{figures['command']}`.{exit_note}_  "
    )
    machine = machine_line(figures["machine"], figures.get("load_at_start", []))
    lines.append(f"_Machine: {machine}._")
    lines.append("")
    lines.append("| what | target | measured | |")
    lines.append("| --- | --- | --- | --- |")
    for row in figures["figures"]:
        lines.append(
            f"| {cell(row['what'])} | {cell(row['target'])} | {cell(row['measured'])} "
            f"| {verdict(row['met'])} |"
        )
    if figures["notes"]:
        lines.append("")
        lines.extend(f"- {cell(note)}" for note in figures["notes"])
    return "\n".join(lines)


def block(text: str, name: str) -> str | None:
    match = re.search(
        rf"<!-- bench:{re.escape(name)} start -->\n(.*?)\n<!-- bench:{re.escape(name)} end -->",
        text,
        re.DOTALL,
    )
    return match.group(1) if match else None


def summary(texts: list[str]) -> str:
    """Every figure that has a target, taken from the blocks as they now stand in the docs, so
    the summary never disagrees with the sections below it."""
    lines = ["| benchmark | what | target | measured | |", "| --- | --- | --- | --- | --- |"]
    for names, text in zip(DOCS.values(), texts, strict=True):
        for name in names:
            body = block(text, name)
            if body is None:
                continue
            if "before writing figures" in body:
                lines.append(f"| {name} | the run failed before writing figures | | | **failed** |")
                continue
            for row in body.splitlines():
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
                if len(cells) == 4 and cells[1] and cells[0] not in ("what", "---"):
                    lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(
        rf"(<!-- bench:{re.escape(name)} start -->\n).*?(\n<!-- bench:{re.escape(name)} end -->)",
        re.DOTALL,
    )
    if not pattern.search(text):
        raise SystemExit(f"no <!-- bench:{name} start/end --> markers in the document")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    texts = []
    for doc, names in DOCS.items():
        text = (args.docs / doc).read_text(encoding="utf-8")
        for name in names:
            body = render(name, *load(args.results, name))
            if body is not None:
                text = replace_block(text, name, body)
        texts.append(text)
    table = summary(texts)
    for doc, text in zip(DOCS, texts, strict=True):
        if "<!-- bench:summary start -->" in text:
            text = replace_block(text, "summary", table)
        (args.docs / doc).write_text(text, encoding="utf-8")
        print(f"updated {args.docs / doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
