"""Watchlists (issue 21): a user's own alert rules on addresses, entities and extended keys,
and their private address labels.

An entry says *what* to watch; *how* to be told (e-mail, webhooks, quiet hours, hourly cap) is
not copied here: each entry delivers through a Subscription of its owner (`delivery`), by default
the owner's "Watchlist" subscription, created on first use and never matched against whales.
The ingest watches `detection.WatchTarget` rows of active `detection.WatchGroup`s; each entry
owns one group (`watch`) and keeps its targets and `active` in step from here.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q

from alerts.models import ISO_CURRENCY, Subscription, fiat_amounts, fiat_within
from detection import watching
from detection.domain.addresses import AddressError, validate_address
from detection.domain.prices import fiat_of
from detection.domain.xpub import (
    CHANGE,
    RECEIVE,
    XpubError,
    looks_like_extended_key,
    parse_extended_key,
    window_after_use,
)
from detection.models import AddressLabel, LabelKind, WatchGroup, WatchTarget
from detection.summary import btc


class WatchKind(models.TextChoices):
    ADDRESS = "address"
    ENTITY = "entity"
    XPUB = "xpub", "extended public key"


class Direction(models.TextChoices):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    EITHER = "either"


class WatchlistEntry(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlist_entries"
    )
    kind = models.CharField(max_length=8, choices=WatchKind.choices)
    # canonical address, entity name as given, or the extended key
    value = models.CharField(max_length=200)
    direction = models.CharField(max_length=8, choices=Direction.choices, default="either")
    min_sats = models.BigIntegerField(null=True, blank=True)
    max_sats = models.BigIntegerField(null=True, blank=True)
    # Fiat bounds compare the entry's own amount at the price the whale was valued at; an
    # entry with one never matches a transaction recorded without a fresh price.
    min_fiat = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    max_fiat = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    fiat_currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code")
    note = models.CharField(max_length=500, blank=True, default="")
    active = models.BooleanField(default=True)
    delivery = models.ForeignKey(
        Subscription,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="watchlist_entries",
        help_text="whose channels, quiet hours and hourly cap the alerts use",
    )
    # What the ingest watches for this entry: made with the entry, deleted with it.
    watch = models.OneToOneField(
        WatchGroup, on_delete=models.PROTECT, related_name="watchlist_entry"
    )
    # Extended keys: the end (exclusive) of the derived window on each branch.
    receive_stop = models.PositiveIntegerField(default=0)
    change_stop = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "watchlist entries"
        constraints = [
            models.UniqueConstraint(fields=["owner", "kind", "value"], name="watch_entry_once"),
            models.CheckConstraint(
                condition=Q(max_sats__isnull=True)
                | Q(min_sats__isnull=True)
                | Q(max_sats__gte=models.F("min_sats")),
                name="watch_entry_max_at_least_min",
            ),
            models.CheckConstraint(
                condition=Q(min_fiat__isnull=True) | Q(min_fiat__gt=0),
                name="watch_entry_min_fiat_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_fiat__isnull=True)
                | Q(min_fiat__isnull=True)
                | Q(max_fiat__gte=models.F("min_fiat")),
                name="watch_entry_max_fiat_at_least_min",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value[:24]} ({self.owner})"

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        if self.watch_id is None:
            self.watch = WatchGroup.objects.create(active=self.active)
        elif update_fields is None or "active" in update_fields:
            WatchGroup.objects.filter(pk=self.watch_id).exclude(active=self.active).update(
                active=self.active
            )
        super().save(*args, **kwargs)

    @property
    def targets(self):
        return self.watch.targets

    def wants(self, direction: str, amount_sats: int, prices: dict[str, Decimal]) -> bool:
        """Does a hit of `amount_sats` in `direction` match, with the whale's `prices`
        ({currency: price per BTC}, empty when it was recorded without one)?"""
        if self.direction != Direction.EITHER and direction != self.direction:
            return False
        if self.min_sats is not None and amount_sats < self.min_sats:
            return False
        if self.max_sats is not None and amount_sats > self.max_sats:
            return False
        price = prices.get(self.fiat_currency)
        amount = None if price is None else fiat_of(amount_sats, price)
        return fiat_within(amount, self.min_fiat, self.max_fiat)

    @staticmethod
    def prices_of(whale) -> dict[str, Decimal]:
        """The prices a whale row was valued at, for `wants`."""
        return fiat_amounts((whale.fiat or {}).get("prices"))


class WatchHit(models.Model):
    """One lifecycle event of a transaction that matched one entry: the owner's "Watching" list.
    Written by the alert fan-out, in the same transaction as the alert deliveries."""

    entry = models.ForeignKey(WatchlistEntry, on_delete=models.CASCADE, related_name="hits")
    event = models.ForeignKey(
        "detection.WhaleEvent", on_delete=models.CASCADE, related_name="watch_hits"
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    amount_sats = models.BigIntegerField(help_text="paid to (or spent from) the entry's addresses")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["entry", "event"], name="watch_hit_once"),
        ]

    def __str__(self) -> str:
        return f"hit of {self.entry_id} on event {self.event_id} ({self.direction})"


class PrivateLabel(models.Model):
    """A user's own name for an address, shown only to them; never a shared AddressLabel
    unless staff promote it (then `promoted` is the shared row, whose source names the user)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="private_labels"
    )
    address = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    promoted = models.ForeignKey(
        "detection.AddressLabel", on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "address"], name="private_label_once"),
        ]

    def __str__(self) -> str:
        return f"{self.address} → {self.name} (private to {self.owner})"

    def promote(self, *, kind: str = LabelKind.OTHER, staff=None) -> AddressLabel:
        """Make this label shared. The shared row's source records whose label it was."""
        source = f"user-label:{self.owner_id}"
        label, _ = AddressLabel.objects.update_or_create(
            address=self.address,
            source=source,
            defaults={"entity": self.name, "kind": kind, "confidence": 1.0},
        )
        self.promoted = label
        self.save(update_fields=["promoted"])
        return label


def private_labels_for(user, addresses) -> dict[str, str]:
    if user is None or not user.is_authenticated:
        return {}
    wanted = {a for a in addresses if a}
    if not wanted:
        return {}
    return dict(
        PrivateLabel.objects.filter(owner=user, address__in=wanted).values_list("address", "name")
    )


# --- adding entries ---------------------------------------------------------------------------


@dataclass
class EntryInput:
    kind: str
    value: str
    direction: str = Direction.EITHER
    min_btc: str | Decimal | None = None
    max_btc: str | Decimal | None = None
    note: str = ""
    min_fiat: str | Decimal | None = None
    max_fiat: str | Decimal | None = None
    fiat_currency: str | None = None


def _sats(value, field: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError({field: f"{value!r} is not a number of BTC."}) from None
    if not amount.is_finite() or amount < 0 or amount > 21_000_000:
        raise ValidationError({field: "Give an amount between 0 and 21,000,000 BTC."})
    return int((amount * 100_000_000).to_integral_value())


def _fiat(value, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationError({field: f"{value!r} is not an amount of money."}) from None
    if not amount.is_finite() or amount <= 0 or amount >= Decimal(10) ** 18:
        raise ValidationError({field: "Give a fiat amount above 0 and below 10^18."})
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError({field: "A fiat amount has at most two decimals."})
    return amount.quantize(Decimal("0.01"))


def build_entry(owner, data: EntryInput) -> WatchlistEntry:
    """A validated, unsaved entry; ValidationError names the field at fault."""
    kind = (data.kind or "").strip().lower()
    if kind not in WatchKind.values:
        raise ValidationError({"kind": f"Unknown kind {data.kind!r}: address, entity or xpub."})
    direction = (data.direction or Direction.EITHER).strip().lower()
    if direction not in Direction.values:
        raise ValidationError(
            {"direction": f"Unknown direction {data.direction!r}: incoming, outgoing or either."}
        )
    raw = (data.value or "").strip()
    if kind != WatchKind.XPUB and looks_like_extended_key(raw):
        kind = WatchKind.XPUB  # judged as a key, so a private one is named as such
    if kind == WatchKind.ADDRESS:
        try:
            value = validate_address(raw).address
        except AddressError as exc:
            raise ValidationError(
                {"value": f"Not a mainnet Bitcoin address ({exc.reason})."}
            ) from None
    elif kind == WatchKind.XPUB:
        try:
            value = parse_extended_key(raw).text
        except XpubError as exc:
            raise ValidationError({"value": str(exc)}) from None
    else:
        if not raw or len(raw) > 100:
            raise ValidationError({"value": "An entity name is 1 to 100 characters."})
        value = raw
    note = (data.note or "").strip()
    if len(note) > 500:
        raise ValidationError({"note": "A note is at most 500 characters."})
    min_sats, max_sats = _sats(data.min_btc, "min_btc"), _sats(data.max_btc, "max_btc")
    if min_sats is not None and max_sats is not None and max_sats < min_sats:
        raise ValidationError({"max_btc": "The maximum must be at least the minimum."})
    min_fiat, max_fiat = _fiat(data.min_fiat, "min_fiat"), _fiat(data.max_fiat, "max_fiat")
    if min_fiat is not None and max_fiat is not None and max_fiat < min_fiat:
        raise ValidationError({"max_fiat": "The maximum must be at least the minimum."})
    currency = (data.fiat_currency or "").strip().upper() or "USD"
    if not ISO_CURRENCY.fullmatch(currency):
        raise ValidationError(
            {"fiat_currency": "A currency is three letters (ISO 4217), e.g. USD."}
        )
    return WatchlistEntry(
        owner=owner,
        kind=kind,
        value=value,
        direction=direction,
        min_sats=min_sats,
        max_sats=max_sats,
        min_fiat=min_fiat,
        max_fiat=max_fiat,
        fiat_currency=currency,
        note=note,
    )


def check_limits(owner, new_entries: list[WatchlistEntry]) -> None:
    existing = WatchlistEntry.objects.filter(owner=owner)
    seen = {(e.kind, e.value.lower() if e.kind == WatchKind.ENTITY else e.value) for e in existing}
    for entry in new_entries:
        key = (entry.kind, entry.value.lower() if entry.kind == WatchKind.ENTITY else entry.value)
        if key in seen:
            raise ValidationError({"value": f"Already on your watchlist: {entry.value}."})
        seen.add(key)
    total = existing.count() + len(new_entries)
    if total > settings.WATCHLIST_MAX_ENTRIES:
        raise ValidationError(
            {"value": f"At most {settings.WATCHLIST_MAX_ENTRIES} watchlist entries per user."}
        )
    keys = existing.filter(kind=WatchKind.XPUB).count() + sum(
        1 for e in new_entries if e.kind == WatchKind.XPUB
    )
    if keys > settings.WATCHLIST_MAX_EXTENDED_KEYS:
        raise ValidationError(
            {"value": f"At most {settings.WATCHLIST_MAX_EXTENDED_KEYS} extended keys per user."}
        )


def watchlist_delivery(owner):
    """The owner's default delivery settings for watch alerts (a Subscription, created once)."""
    subscription = (
        Subscription.objects.filter(owner=owner, for_watchlist=True).order_by("id").first()
    )
    if subscription is None:
        subscription = Subscription.objects.create(
            owner=owner,
            name="Watchlist",
            for_watchlist=True,
            min_sats=max(1, round(settings.WHALE_MIN_BTC * 100_000_000)),
        )
    return subscription


@transaction.atomic
def add_entries(owner, entries: list[WatchlistEntry]) -> list[WatchlistEntry]:
    """Save entries and their watch targets, all or nothing; then tell the ingest."""
    check_limits(owner, entries)
    default_delivery = None
    for entry in entries:
        if entry.delivery_id is None:
            default_delivery = default_delivery or watchlist_delivery(owner)
            entry.delivery = default_delivery
        entry.save()
        sync_targets(entry)
    transaction.on_commit(watching.bump_version)
    return entries


def sync_targets(entry: WatchlistEntry) -> None:
    """(Re)write the ingest's targets for one entry."""
    if entry.kind == WatchKind.ADDRESS:
        WatchTarget.objects.get_or_create(group=entry.watch, address=entry.value, entity="")
    elif entry.kind == WatchKind.ENTITY:
        WatchTarget.objects.get_or_create(group=entry.watch, address="", entity=entry.value)
    else:
        gap = settings.WATCHLIST_GAP_LIMIT
        extend_window(entry, RECEIVE, max(entry.receive_stop, gap))
        extend_window(entry, CHANGE, max(entry.change_stop, gap))


def extend_window(entry: WatchlistEntry, branch: int, stop: int) -> None:
    key = parse_extended_key(entry.value)
    have = set(
        WatchTarget.objects.filter(group=entry.watch, branch=branch).values_list("index", flat=True)
    )
    start = 0
    rows = [
        WatchTarget(group=entry.watch, address=address, branch=branch, index=index)
        for index, address in key.addresses(branch, start, stop)
        if index not in have
    ]
    WatchTarget.objects.bulk_create(rows, ignore_conflicts=True)
    field = "receive_stop" if branch == RECEIVE else "change_stop"
    setattr(entry, field, stop)
    entry.save(update_fields=[field])


def note_used(addresses) -> bool:
    """Extended-key addresses seen in a transaction: move their windows past them.
    Returns whether any window grew (the ingest must then reload)."""
    grew = False
    targets = WatchTarget.objects.filter(
        address__in=set(addresses), branch__isnull=False
    ).select_related("group__watchlist_entry")
    for target in targets:
        entry = target.group.watchlist_entry
        field = "receive_stop" if target.branch == RECEIVE else "change_stop"
        current = getattr(entry, field)
        stop = window_after_use(target.index, current, settings.WATCHLIST_GAP_LIMIT)
        if stop > current:
            extend_window(entry, target.branch, stop)
            grew = True
    if grew:
        transaction.on_commit(watching.bump_version)
    return grew


@transaction.atomic
def delete_entry(entry: WatchlistEntry) -> None:
    entry.delete()
    transaction.on_commit(watching.bump_version)


# --- CSV import and export --------------------------------------------------------------------

CSV_COLUMNS = (
    "kind",
    "value",
    "direction",
    "min_btc",
    "max_btc",
    "note",
    "min_fiat",
    "max_fiat",
    "fiat_currency",
)


class CsvImportError(ValueError):
    """The file was refused as a whole; `errors` lists "line N, field: message" strings."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors[:5]) + (" …" if len(errors) > 5 else ""))


def _messages(exc: ValidationError) -> list[tuple[str, str]]:
    if hasattr(exc, "message_dict"):
        return [(field, " ".join(msgs)) for field, msgs in exc.message_dict.items()]
    return [("", " ".join(exc.messages))]


def parse_csv(owner, data: bytes) -> list[WatchlistEntry]:
    """Validate a whole CSV (header: kind,value and any of CSV_COLUMNS, in any order); every
    problem is reported with its line, and nothing is returned unless every line is good."""
    limit = settings.WATCHLIST_CSV_MAX_BYTES
    if len(data) > limit:
        raise CsvImportError([f"file: {len(data):,} bytes is over the limit of {limit:,} bytes"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvImportError([f"file: not UTF-8 text (byte {exc.start})"]) from None
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(rows)]
    except StopIteration:
        raise CsvImportError(["line 1: the file is empty; expected a header row"]) from None
    except csv.Error as exc:
        raise CsvImportError([f"line 1: {exc}"]) from None
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown or "kind" not in header or "value" not in header:
        raise CsvImportError(
            [f"line 1: the header must name kind and value, from {', '.join(CSV_COLUMNS)}"]
        )
    errors: list[str] = []
    entries: list[WatchlistEntry] = []
    lines: list[int] = []
    try:
        for row in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                errors.append(f"line {line}: {len(row)} columns, the header has {len(header)}")
                continue
            fields = dict(zip(header, row, strict=True))
            try:
                entries.append(build_entry(owner, EntryInput(**fields)))
                lines.append(line)
            except ValidationError as exc:
                errors.extend(f"line {line}, {field}: {msg}" for field, msg in _messages(exc))
            if len(errors) >= 100:
                errors.append("… stopped after 100 errors")
                break
    except csv.Error as exc:
        errors.append(f"line {rows.line_num}: {exc}")
    existing = {
        (e.kind, e.value.lower() if e.kind == WatchKind.ENTITY else e.value): "already saved"
        for e in WatchlistEntry.objects.filter(owner=owner)
    }
    for line, entry in zip(lines, entries, strict=True):
        key = (entry.kind, entry.value.lower() if entry.kind == WatchKind.ENTITY else entry.value)
        where = existing.get(key)
        if where is not None:
            errors.append(f"line {line}, value: duplicate of {where}: {entry.value}")
        existing[key] = f"line {line}"
    if errors:
        raise CsvImportError(errors)
    return entries


def import_csv(owner, data: bytes) -> list[WatchlistEntry]:
    entries = parse_csv(owner, data)
    try:
        return add_entries(owner, entries)
    except ValidationError as exc:
        raise CsvImportError([f"file, {f}: {m}" for f, m in _messages(exc)]) from None


def export_csv(owner) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in WatchlistEntry.objects.filter(owner=owner).order_by("created_at", "id"):
        writer.writerow(
            [
                entry.kind,
                entry.value,
                entry.direction,
                btc(entry.min_sats) or "",
                btc(entry.max_sats) or "",
                _csv_safe(entry.note),
                "" if entry.min_fiat is None else entry.min_fiat,
                "" if entry.max_fiat is None else entry.max_fiat,
                entry.fiat_currency,
            ]
        )
    return buffer.getvalue()


def _csv_safe(text: str) -> str:
    # A note opened in a spreadsheet must not run as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
