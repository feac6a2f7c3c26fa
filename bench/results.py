"""The one format every benchmark writes its figures in, so `make bench` can publish them.

A script that measures something calls ``Results`` once, adds a row per figure it printed, and
``save()``s: with ``--json PATH`` (see ``add_json_argument``) the figures go to PATH as JSON;
``bench/report.py`` turns every such file into the tables of docs/PERFORMANCE.md. Figures are
never typed into the docs by hand: a row exists only because a run produced it.

    results = Results("ingest", "Ingest throughput and memory")
    results.add("parse + state + projection", "41,750 tx/s", target=">= 20,000 tx/s", met=True)
    results.note("Synthetic transactions are heavier JSON than real ones.")
    results.save(args.json)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figure:
    what: str
    measured: str
    target: str = ""
    # True / False against the target; None where there is no target.
    met: bool | None = None


def command_line() -> str:
    """How this script was run, without the --json destination (which is make bench's business)."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(Path(__file__).resolve().parent.parent)
    words: list[str] = []
    skip = False
    for word in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if word == "--json":
            skip = True
            continue
        if word.startswith("--json="):
            continue
        words.append(word)
    return " ".join([str(script), *words])


@dataclass
class Results:
    name: str
    title: str
    command: str = field(default_factory=command_line)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    load_at_start: list[float] = field(default_factory=lambda: load_average())

    def add(self, what: str, measured: str, *, target: str = "", met: bool | None = None) -> None:
        self.figures.append(Figure(what, measured, target, met))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def save(self, path: str | os.PathLike | None) -> None:
        if not path:
            return
        document = asdict(self)
        document["finished_at"] = time.time()
        document["machine"] = machine_description()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        partial.replace(target)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the figures to PATH for bench/report.py (make bench does this)",
    )


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_description() -> dict[str, object]:
    import psutil

    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu_model": cpu_model or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": load_average(),
    }
