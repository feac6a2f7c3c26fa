// Stats page charts (Chart.js, vendored in static/vendor/chartjs). The figures come from the
// page itself (json_script "stats-data", built by dashboard/stats_data.py); each chart also
// gets a plain table for screen readers and for copying numbers.
(() => {
  "use strict";

  const source = document.getElementById("stats-data");
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const css = getComputedStyle(document.documentElement);
  const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;

  // The words are Flow.choices from the server (base.html); only the colours are the page's.
  const flowLabels = JSON.parse(document.getElementById("flow-labels")?.textContent || "{}");
  const FLOWS = [
    ["exchange_inflow", color("--flow-inflow", "#ff9f6e")],
    ["exchange_outflow", color("--flow-outflow", "#4dd6e8")],
    ["inter_exchange", color("--flow-inter", "#b9a3ff")],
    ["exchange_internal", color("--flow-internal", "#9fb3c3")],
    ["unknown", color("--flow-unknown", "#5f7d99")],
  ].map(([key, c]) => [key, flowLabels[key] || key, c]);
  const BANDS = [
    ["high", "High", color("--band-high", "#ff6b6b")],
    ["medium", "Medium", color("--band-medium", "#f4c542")],
    ["low", "Low", color("--band-low", "#52d273")],
  ];
  const bandColor = Object.fromEntries(BANDS.map(([key, , c]) => [key, c]));

  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  Chart.defaults.color = color("--muted", "#a9bccd");
  Chart.defaults.borderColor = color("--grid", "#22405b");
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = reducedMotion ? false : { duration: 400 };
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;

  const btc = (v) => `${Number(v).toLocaleString("en-US", { maximumFractionDigits: 0 })} BTC`;
  const timeAxis = { ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 12 }, grid: { display: false } };

  function chart(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas) return null;
    return new Chart(canvas, config);
  }

  function table(id, labels, series, unit = "") {
    const holder = document.querySelector(`[data-table-for="${id}"]`);
    if (!holder) return;
    const esc = window.WhaleWatch ? window.WhaleWatch.escapeHtml : String;
    const cell = (v) => (v === null || v === undefined ? "—" : `${esc(v)}${unit}`);
    const head = `<tr><th scope="col">Time</th>${series.map((s) => `<th scope="col">${esc(s.name)}</th>`).join("")}</tr>`;
    const rows = labels.map((label, i) =>
      `<tr><th scope="row">${esc(label)}</th>${series.map((s) => `<td>${cell(s.values[i])}</td>`).join("")}</tr>`,
    ).join("");
    holder.innerHTML = `<table class="plain compact"><thead>${head}</thead><tbody>${rows}</tbody></table>`;
  }

  // 1. Volume per hour, stacked by flow.
  const volume = data.volume;
  chart("chart-volume", {
    type: "bar",
    data: {
      labels: volume.labels,
      datasets: FLOWS.map(([key, label, c]) => ({
        label, data: volume.by_flow[key], backgroundColor: c, borderRadius: 2, stack: "flow",
      })),
    },
    options: {
      scales: {
        x: { ...timeAxis, stacked: true },
        y: { stacked: true, beginAtZero: true, ticks: { callback: btc } },
      },
      plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${btc(c.parsed.y)}` } } },
    },
  });
  table("chart-volume", volume.labels, [
    ...FLOWS.map(([key, label]) => ({ name: `${label} (BTC)`, values: volume.by_flow[key] })),
    { name: "Whales", values: volume.whales },
  ]);

  // 2. Inflow above the axis, outflow below, net as a line.
  chart("chart-flows", {
    type: "bar",
    data: {
      labels: volume.labels,
      datasets: [
        { label: "Inflow", data: volume.inflow, backgroundColor: FLOWS[0][2], borderRadius: 2, order: 2 },
        { label: "Outflow", data: volume.outflow.map((v) => -v), backgroundColor: FLOWS[1][2], borderRadius: 2, order: 2 },
        {
          type: "line", label: "Net (in − out)", data: volume.net, borderColor: color("--ink", "#e8f1f8"),
          backgroundColor: "transparent", pointRadius: 0, borderWidth: 2, tension: 0, order: 1,
        },
      ],
    },
    options: {
      scales: {
        x: { ...timeAxis, stacked: true },
        y: { stacked: false, ticks: { callback: (v) => btc(Math.abs(v)) } },
      },
      plugins: {
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${btc(Math.abs(c.parsed.y))}` } },
      },
    },
  });
  table("chart-flows", volume.labels, [
    { name: "Inflow (BTC)", values: volume.inflow },
    { name: "Outflow (BTC)", values: volume.outflow },
    { name: "Net (BTC)", values: volume.net },
  ]);

  // 3. Urgency histogram, bars coloured by the band their scores fall in.
  const urgency = data.urgency;
  chart("chart-urgency", {
    type: "bar",
    data: {
      labels: urgency.labels,
      datasets: [{
        label: "Whales", data: urgency.counts, borderRadius: 3,
        backgroundColor: urgency.bands.map((b) => bandColor[b]),
      }],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: {
        x: { grid: { display: false }, title: { display: true, text: "urgency score" } },
        y: { beginAtZero: true, ticks: { precision: 0 } },
      },
    },
  });
  table("chart-urgency", urgency.labels, [
    { name: "Band", values: urgency.bands },
    { name: "Whales", values: urgency.counts },
  ]);

  // 4. Coverage: seen in the mempool first against learnt only from a block.
  const coverage = data.coverage;
  chart("chart-coverage", {
    type: "doughnut",
    data: {
      labels: ["Seen in the mempool first", "Learnt from the block"],
      datasets: [{
        data: [coverage.seen_first, Math.max(0, coverage.mined - coverage.seen_first)],
        backgroundColor: [color("--good", "#52d273"), color("--flow-unknown", "#5f7d99")],
        borderWidth: 0,
      }],
    },
    options: { cutout: "62%", plugins: { legend: { position: "bottom" } } },
  });

  // 5. Hit rate per band over time, with the alarm floor.
  const acc = data.accuracy;
  chart("chart-hits", {
    type: "line",
    data: {
      labels: acc.labels,
      datasets: [
        ...BANDS.map(([key, label, c]) => ({
          label, data: acc.hit_rate[key], borderColor: c, backgroundColor: c,
          spanGaps: true, tension: 0.2, pointRadius: 3,
        })),
        {
          label: "Alarm floor (70 %)", data: acc.labels.map(() => 70), borderColor: color("--muted", "#a9bccd"),
          borderDash: [6, 4], pointRadius: 0, borderWidth: 1,
        },
      ],
    },
    options: {
      scales: {
        x: timeAxis,
        y: { min: 0, max: 100, ticks: { callback: (v) => `${v} %` } },
      },
      plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.parsed.y} %` } } },
    },
  });
  table("chart-hits", acc.labels, BANDS.map(([key, label]) => ({
    name: `${label}: hit rate`,
    values: acc.hit_rate[key].map((v, i) => (v === null ? null : `${v} % of ${acc.resolved[key][i]}`)),
  })));

  // 6. Mean absolute block error over time.
  chart("chart-error", {
    type: "line",
    data: {
      labels: acc.labels,
      datasets: [{
        label: "Mean block error", data: acc.mean_error, borderColor: color("--accent", "#4cc9f0"),
        backgroundColor: "rgba(76, 201, 240, .15)", fill: true, spanGaps: true, tension: 0.2, pointRadius: 3,
      }],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: { x: timeAxis, y: { beginAtZero: true, title: { display: true, text: "blocks" } } },
    },
  });
  table("chart-error", acc.labels, [{ name: "Mean block error (blocks)", values: acc.mean_error }]);
})();
