"""The feed's filter form takes every limit from the API's FilterSet: the same values pass and
fail with the same messages, and the page keeps only its own words."""

from __future__ import annotations

import pytest

from dashboard.feed_filters import FeedFilterForm
from detection.api.filters import WhaleFilter

LIMITS = ("min_value", "max_value", "max_digits", "decimal_places", "max_length")


@pytest.mark.parametrize("name", ["min_btc", "max_btc", "entity"])
def test_the_feeds_fields_are_the_filtersets_relabelled(name):
    page = FeedFilterForm.base_fields[name]
    api = WhaleFilter.base_filters[name].field
    assert type(page) is type(api)
    assert {a: getattr(page, a, None) for a in LIMITS} == {a: getattr(api, a, None) for a in LIMITS}
    assert page.widget.attrs == api.widget.attrs  # the browser's min/max/step/maxlength too
    assert page.label != api.label  # the page's words; the API's own label is untouched
    assert WhaleFilter.base_filters[name].field.label == api.label


@pytest.mark.parametrize(
    "query",
    [
        {"min_btc": "-5"},
        {"max_btc": "21000000.00000001"},
        {"min_btc": "1.123456789"},
        {"min_btc": "123456789.12345678"},
        {"min_btc": "lots"},
        {"min_btc": "1e999999"},
        {"min_btc": "500", "max_btc": "100"},
        {"entity": "x" * 101},
        {"min_btc": "0", "max_btc": "21000000", "entity": " Binance "},
    ],
)
def test_the_feed_accepts_and_refuses_what_the_api_does(query):
    page, api = FeedFilterForm(query), WhaleFilter(query).form
    assert page.is_valid() == api.is_valid()
    assert page.errors == api.errors
    assert {k: page.cleaned_data.get(k) for k in query} == {
        k: api.cleaned_data.get(k) for k in query
    }


def test_the_page_words_stay():
    form = FeedFilterForm({"min_btc": "-5", "entity": "x" * 101})
    assert form.problems() == [
        "Entity: Ensure this value has at most 100 characters (it has 101).",
        "Min BTC: Ensure this value is greater than or equal to 0.",
    ]
    assert FeedFilterForm.base_fields["entity"].help_text == "Sender or receiver, e.g. Binance"
