"""CSV export: cells starting with a full-width formula sign are neutralised like ASCII ones.

Spreadsheets (LibreOffice, some Excel locales) read ＝ ＋ － ＠ as = + - @ when a cell is typed
or pasted, so an entity label starting with one is as dangerous as the ASCII sign.
"""

import pytest

from detection.api.csv import _safe_text


@pytest.mark.parametrize("sign", ["＝", "＋", "－", "＠", "=", "+", "-", "@"])
def test_formula_signs_get_a_quote(sign):
    assert _safe_text(f'{sign}HYPERLINK("x")') == f'\'{sign}HYPERLINK("x")'


def test_plain_labels_are_unchanged():
    assert _safe_text("Binance") == "Binance"
