from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from detection.domain.labels_csv import parse_label_csv_file
from detection.labels import RESERVED_SOURCES, write_labels


class Command(BaseCommand):
    help = (
        "Import address labels from a CSV file (columns address, entity, kind[, confidence]). "
        "The whole file is validated first; any bad row stops the import and nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file with a header row")
        parser.add_argument(
            "--source", required=True, help="a name for where these labels came from"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="validate and report, write nothing"
        )

    def handle(self, *args, path, source, dry_run, **options):
        source = source.strip()
        if not source or len(source) > 60:
            raise CommandError("--source must be 1 to 60 characters")
        if source in RESERVED_SOURCES:
            raise CommandError(f"--source {source!r} is reserved for labels the portal makes")
        try:
            result = parse_label_csv_file(path)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        if result.errors:
            for error in result.errors:
                self.stderr.write(f"{path}: {error}")
            raise CommandError(f"{len(result.errors)} bad row(s) in {path}; nothing was imported")
        if dry_run:
            self.stdout.write(
                f"{path}: {len(result.rows)} valid label(s); dry run, nothing written"
            )
            return
        with tqdm(
            total=len(result.rows),
            unit="label",
            file=self.stderr,
            disable=options.get("verbosity", 1) < 1,
        ) as bar:
            created, updated = write_labels(result.rows, source, progress=bar.update)
        self.stdout.write(
            f"{path}: imported {len(result.rows)} label(s) from {source!r} "
            f"({created} new, {updated} updated)"
        )
