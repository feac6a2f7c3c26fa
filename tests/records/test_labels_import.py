import io

import pytest
from django.core.management import CommandError, call_command

from detection.models import AddressLabel

pytestmark = pytest.mark.django_db

GOOD = (
    "address,entity,kind,confidence\n"
    "18GGVNNJ5EYSyac8svtWDvAKtB2fVq2AmS,Example Exchange,exchange,0.9\n"
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq,Example Custody,custodian,\n"
)


def run(path, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_labels", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_good_rows_are_imported(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(GOOD)
    out, _ = run(path, "--source", "ops-2026")
    assert "imported 2 label(s) from 'ops-2026' (2 new, 0 updated)" in out
    rows = {
        label.address: (label.entity, label.kind, label.confidence, label.source)
        for label in AddressLabel.objects.all()
    }
    assert rows == {
        "18GGVNNJ5EYSyac8svtWDvAKtB2fVq2AmS": ("Example Exchange", "exchange", 0.9, "ops-2026"),
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq": (
            "Example Custody",
            "custodian",
            1.0,
            "ops-2026",
        ),
    }


def test_reimport_updates_in_place(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(GOOD)
    run(path, "--source", "ops")
    path.write_text(GOOD.replace("Example Exchange", "Renamed Exchange"))
    out, _ = run(path, "--source", "ops")
    assert "(0 new, 2 updated)" in out
    assert AddressLabel.objects.get(address="18GGVNNJ5EYSyac8svtWDvAKtB2fVq2AmS").entity == (
        "Renamed Exchange"
    )


def test_bad_rows_import_nothing_and_report_line_numbers(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        GOOD
        + "18GGVNNJ5EYSyac8svtWDvAKtB2fVq2AmT,Bad Checksum,exchange,1\n"  # line 4
        + "18GGVNNJ5EYSyac8svtWDvAKtB2fVq2AmS,Example Exchange,exchange,1\n"  # line 5: duplicate
        + "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq,X,volcano,1\n"  # line 6: duplicate + kind
        + "1BoatSLRHtKNngkdXEeobR76b53LETtpyT,Boat,exchange,1.5\n"  # line 7: confidence
    )
    err = io.StringIO()
    with pytest.raises(CommandError, match="bad row"):
        call_command("import_labels", str(path), "--source", "ops", stderr=err)
    report = err.getvalue()
    assert "line 4" in report and "checksum" in report
    assert "line 5" in report and "duplicate" in report.lower()
    assert "line 6" in report
    assert "line 7" in report
    assert AddressLabel.objects.count() == 0


def test_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(GOOD)
    out, _ = run(path, "--source", "ops", "--dry-run")
    assert "2 valid label(s); dry run" in out
    assert AddressLabel.objects.count() == 0


def test_reserved_source_is_refused(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(GOOD)
    with pytest.raises(CommandError, match="reserved"):
        run(path, "--source", "cluster")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run(tmp_path / "nope.csv", "--source", "ops")


def test_pool_labels_load_from_bundled_pools_v2():
    out = io.StringIO()
    call_command("import_pool_labels", stdout=out)
    assert "pools-v2:" in out.getvalue()
    miners = AddressLabel.objects.filter(source="pools-v2", kind="miner")
    assert miners.count() > 50
    # Idempotent: a second load updates, never duplicates.
    before = miners.count()
    call_command("import_pool_labels", stdout=io.StringIO())
    assert AddressLabel.objects.filter(source="pools-v2").count() == before


def test_model_label_kinds_match_the_csv_parser():
    from detection.domain.labels import LABEL_KINDS

    assert {value for value, _ in AddressLabel._meta.get_field("kind").choices} == set(LABEL_KINDS)
