"""Chart numbers in a real browser: the axis rule of static/js/chart_format.js, under Chart.js.

Sub-bitcoin values once read "1 BTC, 1 BTC … 0 BTC" on the inflow/outflow axis. Here a real
Chart.js chart (the vendored build the stats page loads) draws them and the tick labels are read
back. Needs Debian's Chromium; no server, no database.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).resolve().parents[2] / "static"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

DRAW = """([values, unit, absolute]) => {
  const canvas = document.createElement("canvas");
  canvas.width = 400; canvas.height = 300;
  document.body.appendChild(canvas);
  const chart = new Chart(canvas, {
    type: "bar",
    data: { labels: values.map((_, i) => String(i)), datasets: [{ data: values }] },
    options: { animation: false, responsive: false,
      scales: { y: { ticks: { callback: ChartFormat.axisTick(unit, { absolute }) } } } },
  });
  const labels = chart.scales.y.ticks.map((t) => t.label);
  chart.destroy();
  return labels;
}"""


@pytest.fixture(scope="module")
def page():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless=new"]
        )
        page = browser.new_page()
        page.set_content("<!doctype html><html><body></body></html>")
        page.add_script_tag(path=str(STATIC / "vendor" / "chartjs" / "chart.umd.min.js"))
        page.add_script_tag(path=str(STATIC / "js" / "chart_format.js"))
        yield page
        browser.close()


def draw(page, values, unit="BTC", absolute=False) -> list[str]:
    return page.evaluate(DRAW, [values, unit, absolute])


def test_sub_bitcoin_axis_has_distinct_ticks(page):
    labels = draw(page, [0.12, 0.31, 0.9, 0.05])
    assert len(labels) == len(set(labels)), labels  # never "1 BTC, 1 BTC, …"
    assert labels[0] == "0 BTC" and all(label.endswith(" BTC") for label in labels)
    assert any(label.startswith("0.") for label in labels), labels


def test_outflow_below_the_axis_reads_as_magnitudes(page):
    labels = draw(page, [0.4, -0.6, 0.2], absolute=True)
    assert not any(label.startswith("-") for label in labels), labels
    assert "0.6 BTC" in labels or "0.8 BTC" in labels, labels


def test_large_values_have_no_decimals(page):
    labels = draw(page, [1200, 5400, 300])
    assert labels[0] == "0 BTC" and "1,000 BTC" in labels, labels


def test_single_values(page):
    values = [0.000123, 0.25, 12.345, 1234.5, 0]
    got = page.evaluate(
        "(vs) => vs.map((v) => ChartFormat.value(v, 'BTC'))", json.loads(json.dumps(values))
    )
    assert got == ["0.000123 BTC", "0.25 BTC", "12.35 BTC", "1,235 BTC", "0 BTC"]
