// The "Watching" page: hits pushed over the dashboard socket (feed.js emits them as
// whalewatch:watch; the server sends each user only their own) go on top of the table.
(() => {
  "use strict";
  const table = document.querySelector("#watch-hits tbody");
  if (!table) return;
  const esc = (value) => window.WhaleWatch.escapeHtml(value);

  document.addEventListener("whalewatch:watch", (event) => {
    const hit = event.detail;
    const empty = table.querySelector(".ww-watch-empty");
    if (empty) empty.remove();
    for (const entry of hit.watch.entries) {
      const row = document.createElement("tr");
      const note = entry.note ? `<br><small class="muted">${esc(entry.note)}</small>` : "";
      row.innerHTML =
        `<td>${esc(hit.occurred_at)}</td><td>${esc(hit.kind)}</td>` +
        `<td>${esc(entry.value.slice(0, 30))}${note}</td><td>${esc(entry.direction)}</td>` +
        `<td>${esc(entry.amount_btc)} BTC</td><td><code>${esc(hit.whale.txid.slice(0, 20))}</code></td>`;
      table.prepend(row);
    }
  });
})();
