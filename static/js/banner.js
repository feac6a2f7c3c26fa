// Source-health banner: shows what the server judged (dashboard/source_health.py), carried by
// every `ingest.status` and snapshot the socket delivers (feed.js dispatches them as
// "whalewatch:ingest"). The judgement lists the moments its words change if the ingest falls
// silent; the banner follows them every few seconds, so it turns amber, then red, on its own.
(() => {
  "use strict";

  const body = document.body;
  const zone = body.dataset.timeZone || "UTC";
  const isStaff = body.dataset.staff === "1";

  const formats = {
    time: new Intl.DateTimeFormat(undefined, {
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: zone,
    }),
    day: new Intl.DateTimeFormat(undefined, {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      timeZone: zone,
    }),
  };

  const escapeHtml = (value) => String(value ?? "").replace(/[&<>"']/g, (ch) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  }[ch]));

  window.WhaleWatch = Object.assign(window.WhaleWatch || {}, {
    zone,
    escapeHtml,
    formatTime: (epochSeconds) => formats.time.format(new Date(epochSeconds * 1000)),
    formatDay: (epochSeconds) => formats.day.format(new Date(epochSeconds * 1000)),
  });

  const banner = document.getElementById("source-banner");
  if (!banner) return;

  // The server's last judgement (dashboard/source_health.py banner_payload) and the offset from
  // this browser's clock to the server's, to follow the judgement's timeline (`then`).
  let latest = null;

  function localiseTimes(node) {
    // The server writes times in UTC; shown in the viewer's zone, as the page renders them.
    for (const time of node.querySelectorAll("time[data-format]")) {
      const epoch = Date.parse(time.getAttribute("datetime")) / 1000;
      if (!Number.isFinite(epoch)) continue;
      time.textContent = time.dataset.format === "day"
        ? WhaleWatch.formatDay(epoch) : WhaleWatch.formatTime(epoch);
    }
  }

  function current() {
    const serverNow = Date.now() / 1000 + latest.offset;
    let shown = latest.banner;
    for (const step of latest.banner.then || []) {
      if (step.at <= serverNow) shown = step;
    }
    return shown;
  }

  function render() {
    if (!latest || !latest.banner) return; // keep what the server rendered until the socket speaks
    const { state, html } = current();
    const text = banner.querySelector("[data-banner-text]");
    // aria-live announces every change: touch the DOM only when the words change.
    if (banner.dataset.state !== state || text.dataset.rendered !== html) {
      banner.dataset.state = state;
      banner.className = `banner source-banner source-${state}`;
      text.innerHTML = html;
      text.dataset.rendered = html;
      localiseTimes(text);
    }
    const memory = banner.querySelector("[data-banner-memory]");
    const memoryHtml = latest.banner.memory_html;
    if (isStaff && memory && typeof memoryHtml === "string" && memory.dataset.rendered !== memoryHtml) {
      memory.innerHTML = memoryHtml;
      memory.dataset.rendered = memoryHtml;
    }
  }

  document.addEventListener("whalewatch:ingest", (event) => {
    const { banner: judged, serverTime } = event.detail;
    const offset = typeof serverTime === "number" ? serverTime - Date.now() / 1000 : 0;
    latest = { banner: judged, offset };
    render();
  });
  setInterval(render, 5000);
})();
