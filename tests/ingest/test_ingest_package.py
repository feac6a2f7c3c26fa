"""The ingest package is pure Python: it must import and work with Django absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys

class NoDjango:
    def find_spec(self, name, path=None, target=None):
        if name == "django" or name.startswith("django."):
            raise ImportError("Django is not allowed in detection.ingest")
        return None

sys.meta_path.insert(0, NoDjango())
import detection.ingest
import detection.ingest.sources.live, detection.ingest.sources.replay
import detection.ingest.sources.synthetic, detection.ingest.runner
assert not any(m == "django" or m.startswith("django.") for m in sys.modules)
print("ok")
"""


def test_imports_without_django():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
