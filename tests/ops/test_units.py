"""The systemd units: the directives the operations guide relies on, and systemd's own verdict."""

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ("web", "worker", "beat", "ingest")
HARDENING = {
    "PrivateTmp": "true",
    "NoNewPrivileges": "true",
    "ProtectSystem": "strict",
    "ProtectHome": "true",
    "RestrictSUIDSGID": "true",
    "RestrictNamespaces": "true",
    "RestrictRealtime": "true",
}


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    # Continuation lines ("\" at the end) are joined the way systemd joins them.
    parser.read_string(path.read_text().replace("\\\n", " "))
    return parser


@pytest.mark.parametrize("name", SERVICES)
def test_service_unit_has_restart_limits_sandbox_and_journal(name):
    unit = read_unit(UNITS / f"whalewatch-{name}.service")
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert int(service["RestartSec"]) > 0
    assert service["EnvironmentFile"] == "/etc/whalewatch/whalewatch.env"
    assert service["SyslogIdentifier"] == f"whalewatch-{name}"
    assert service["User"] == "whalewatch"
    for key, value in HARDENING.items():
        assert service[key] == value, key
    assert service["ReadWritePaths"].split() == ["/var/lib/whalewatch", "/var/log/whalewatch"]
    high, maximum = (int(service[k].rstrip("M")) for k in ("MemoryHigh", "MemoryMax"))
    assert 0 < high < maximum
    assert unit["Unit"]["PartOf"] == "whalewatch.target"
    assert unit["Install"]["WantedBy"] == "whalewatch.target"


def test_shutdown_signals_and_limits():
    ingest = read_unit(UNITS / "whalewatch-ingest.service")["Service"]
    assert (ingest["KillSignal"], ingest["TimeoutStopSec"]) == ("SIGINT", "30")
    assert (ingest["MemoryHigh"], ingest["MemoryMax"]) == ("550M", "650M")
    web = read_unit(UNITS / "whalewatch-web.service")["Service"]
    assert web["KillSignal"] == "SIGTERM"
    assert (web["MemoryHigh"], web["MemoryMax"]) == ("350M", "400M")
    assert "--proxy-headers" in web["ExecStart"]
    worker = read_unit(UNITS / "whalewatch-worker.service")["Service"]
    # Warm shutdown waits for running tasks: give them their whole time limit.
    assert worker["KillSignal"] == "SIGTERM"
    assert worker["KillMode"] == "mixed"
    from django.conf import settings

    assert int(worker["TimeoutStopSec"]) > settings.CELERY_TASK_TIME_LIMIT


def test_target_wants_every_service():
    target = read_unit(UNITS / "whalewatch.target")
    assert set(target["Unit"]["Wants"].split()) == {f"whalewatch-{s}.service" for s in SERVICES}


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (apt-get install systemd to run this check)",
)
def test_units_pass_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart binaries exist: point the units at this checkout's venv.
    for source in UNITS.iterdir():
        text = source.read_text()
        text = text.replace("/opt/whalewatch/venv", str(ROOT / ".venv"))
        text = text.replace("/opt/whalewatch/app", str(ROOT))
        (tmp_path / source.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [line for line in result.stderr.splitlines() if "whalewatch" in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []
