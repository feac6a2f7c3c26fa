"""The "Watching" page (issue 21): a user's watchlist, their hits (live over the dashboard
socket), CSV import/export and private labels, under /alerts/watching/. Everything is looked
up through its owner: another user's id is a plain 404."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alerts.watchlists import (
    CsvImportError,
    EntryInput,
    PrivateLabel,
    WatchHit,
    WatchlistEntry,
    add_entries,
    build_entry,
    delete_entry,
    export_csv,
    import_csv,
)
from detection.domain.addresses import AddressError, validate_address

HITS_SHOWN = 50


@login_required
def watching(request):
    entries = WatchlistEntry.objects.filter(owner=request.user)
    hits = (
        WatchHit.objects.filter(entry__owner=request.user)
        .select_related("entry", "event", "event__whale")
        .order_by("-created_at", "-id")[:HITS_SHOWN]
    )
    labels = PrivateLabel.objects.filter(owner=request.user)
    return render(
        request,
        "alerts/watching.html",
        {"entries": entries, "hits": hits, "labels": labels, "tab": "watching"},
    )


def _say_errors(request, exc: ValidationError) -> None:
    for field, problems in getattr(exc, "message_dict", {"": exc.messages}).items():
        messages.error(request, f"{field}: {' '.join(problems)}" if field else " ".join(problems))


@login_required
@require_POST
def entry_add(request):
    post = request.POST
    try:
        entry = build_entry(
            request.user,
            EntryInput(
                kind=post.get("kind", ""),
                value=post.get("value", ""),
                direction=post.get("direction", "either"),
                min_btc=post.get("min_btc") or None,
                max_btc=post.get("max_btc") or None,
                min_fiat=post.get("min_fiat") or None,
                max_fiat=post.get("max_fiat") or None,
                fiat_currency=post.get("fiat_currency") or None,
                note=post.get("note", ""),
            ),
        )
        add_entries(request.user, [entry])
    except ValidationError as exc:
        _say_errors(request, exc)
    else:
        messages.success(request, f"Watching {entry.value[:40]}.")
    return redirect("alerts:watching")


@login_required
@require_POST
def entry_delete(request, public_id):
    delete_entry(get_object_or_404(WatchlistEntry, public_id=public_id, owner=request.user))
    messages.success(request, "Entry removed.")
    return redirect("alerts:watching")


@login_required
@require_POST
def watchlist_import(request):
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a CSV file.")
        return redirect("alerts:watching")
    try:
        entries = import_csv(request.user, upload.read(_limit_plus_one()))
    except CsvImportError as exc:
        for problem in exc.errors[:20]:
            messages.error(request, problem)
        messages.error(request, "Nothing was imported.")
    else:
        messages.success(request, f"Imported {len(entries)} entries.")
    return redirect("alerts:watching")


def _limit_plus_one() -> int:
    return settings.WATCHLIST_CSV_MAX_BYTES + 1


@login_required
def watchlist_export(request):
    response = HttpResponse(export_csv(request.user), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="watchlist.csv"'
    return response


@login_required
@require_POST
def label_add(request):
    try:
        address = validate_address(request.POST.get("address", "").strip()).address
    except AddressError as exc:
        messages.error(request, f"address: not a mainnet Bitcoin address ({exc.reason}).")
        return redirect("alerts:watching")
    name = request.POST.get("name", "").strip()
    if not name or len(name) > 100:
        messages.error(request, "name: 1 to 100 characters.")
        return redirect("alerts:watching")
    try:
        PrivateLabel.objects.create(owner=request.user, address=address, name=name)
    except IntegrityError:
        messages.error(request, "address: you already named this address.")
    return redirect("alerts:watching")


@login_required
@require_POST
def label_delete(request, pk):
    get_object_or_404(PrivateLabel, pk=pk, owner=request.user).delete()
    return redirect("alerts:watching")
