"""Pure-Python mempool ingest core: frame parsing, mempool state, block projection, whale
lifecycle, sources and the asyncio pipeline.

Nothing in this package imports Django; the `ingest_mempool` management command wires it to the
database and Celery. Entry points:

- `detection.ingest.sources.open_source(spec)` — a frame source from a URL-like string;
- `detection.ingest.runner.IngestRunner` — reader + publisher pipeline with a pluggable sink;
- `detection.ingest.lifecycle` — the event payload contract (module docstring).
"""

from detection.ingest.lifecycle import WhaleTracker
from detection.ingest.projection import BlockLimits, Projection, project
from detection.ingest.protocol import FrameParser, ParsedFrame
from detection.ingest.runner import FramePipeline, IngestRunner, Stats
from detection.ingest.sources import Recorder, open_source
from detection.ingest.state import MemoryLevel, MemoryPolicy, MempoolState

__all__ = [
    "BlockLimits",
    "FrameParser",
    "FramePipeline",
    "IngestRunner",
    "MemoryLevel",
    "MemoryPolicy",
    "MempoolState",
    "ParsedFrame",
    "Projection",
    "Recorder",
    "Stats",
    "WhaleTracker",
    "open_source",
    "project",
]
