// Source-health banner: re-judged from every `ingest.status` the socket delivers (feed.js
// dispatches them as "whalewatch:ingest"), and every few seconds on its own, so a silent
// ingest turns the banner amber, then red, without any message arriving.
// The rules mirror dashboard/source_health.py; keep the two in step.
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
  const staleAfter = Number(banner.dataset.staleAfter) || 30;
  const unavailableAfter = Number(banner.dataset.unavailableAfter) || 300;
  const number = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

  // The last status and the offset from this browser's clock to the server's.
  let latest = null;

  function judge(status, serverNow) {
    if (!status) return { state: "unavailable", downSince: null, silent: true };
    const writtenAt = number(status.written_at ?? status.at);
    const silent = writtenAt === null || serverNow - writtenAt > staleAfter;
    if (status.connected === true && !silent) return { state: "connected", downSince: null };
    const known = [number(status.disconnected_since), silent ? writtenAt : null]
      .filter((v) => v !== null);
    const downSince = known.length ? Math.min(...known) : serverNow;
    const state = serverNow - downSince > unavailableAfter ? "unavailable" : "degraded";
    return { state, downSince, silent };
  }

  function describe(health) {
    const since = health.downSince;
    if (health.state === "connected") {
      return "<strong>Live</strong> · mempool source connected";
    }
    if (health.state === "degraded") {
      return `<strong>Degraded</strong> · mempool source reconnecting since
        <time>${escapeHtml(WhaleWatch.formatTime(since))}</time>.
        New whales and predictions may lag.`;
    }
    const when = since
      ? `the mempool source has been down since <time>${escapeHtml(WhaleWatch.formatDay(since))}</time>.`
      : "no heartbeat from the ingest process.";
    return `<strong>Mempool predictions unavailable</strong> · ${when}
      Recorded whales are shown; urgency and ETA are not being updated.`;
  }

  function describeMemory(status) {
    const level = (status && status.memory_level) || "unknown";
    const rss = status && number(status.rss_mb);
    const source = status && status.source ? ` · ${escapeHtml(status.source)}` : "";
    return `Ingest memory: <span class="memory-${escapeHtml(level)}">${escapeHtml(level)}</span>` +
      (rss !== null && rss !== undefined ? ` (${Math.round(rss)} MB)` : "") + source;
  }

  function render() {
    if (!latest) return; // keep what the server rendered until the socket speaks
    const serverNow = Date.now() / 1000 + latest.offset;
    const health = judge(latest.status, serverNow);
    const text = banner.querySelector("[data-banner-text]");
    const html = describe(health);
    // aria-live announces every change: touch the DOM only when the words change.
    if (banner.dataset.state !== health.state || text.dataset.rendered !== html) {
      banner.dataset.state = health.state;
      banner.className = `banner source-banner source-${health.state}`;
      text.innerHTML = html;
      text.dataset.rendered = html;
    }
    const memory = banner.querySelector("[data-banner-memory]");
    if (isStaff && memory) {
      const memoryHtml = describeMemory(latest.status);
      if (memory.dataset.rendered !== memoryHtml) {
        memory.innerHTML = memoryHtml;
        memory.dataset.rendered = memoryHtml;
      }
    }
  }

  document.addEventListener("whalewatch:ingest", (event) => {
    const { status, serverTime } = event.detail;
    const offset = typeof serverTime === "number" ? serverTime - Date.now() / 1000 : 0;
    latest = { status, offset };
    render();
  });
  setInterval(render, 5000);

  window.WhaleWatch.judgeSourceHealth = judge; // for the browser test and the console
})();
