// The dashboard's live socket (every logged-in page) and the live feed (the home page).
//
// The channel layer behind /ws/whales/ is at-most-once, so the server sends a snapshot from the
// database on every connect and the feed is rebuilt from it; pushed events are applied on top.
// A lost socket reconnects with exponential backoff (1 s doubling to 30 s, ±20 % jitter) and
// takes a fresh snapshot, so nothing is missed across a reconnect.
//
// The browser holds no copy of a server rule: every row arrives rendered by the page's own
// template (templates/dashboard/_whale_row.html, via dashboard/rows.py), and with filters on the
// server says whether a pushed event's whale matches them (`matches`, dashboard/fanout.py).
(() => {
  "use strict";

  const body = document.body;
  const socketPath = body.dataset.liveSocket;
  if (!socketPath || !("WebSocket" in window)) return;

  const CLOSE_UNAUTHENTICATED = 4401;
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const PING_EVERY_MS = 25000;
  const SILENT_LIMIT_MS = 70000; // no frame (not even a pong) for this long: the link is dead
  const RECENT_LIMIT = 50;
  const HIGHLIGHT_MS = 4000;

  const feed = document.getElementById("feed");
  const esc = (value) => window.WhaleWatch.escapeHtml(value);
  const emit = (name, detail) => document.dispatchEvent(new CustomEvent(name, { detail }));

  // --- the socket --------------------------------------------------------------------------

  class LiveSocket {
    constructor(url) {
      this.url = url;
      this.attempt = 0;
      this.socket = null;
      this.retryTimer = null;
      this.pingTimer = null;
      this.lastFrameAt = 0;
      this.stopped = false;
    }

    connect() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (this.stopped) return;
      setConnection("connecting", this.attempt ? "Reconnecting…" : "Connecting…");
      const socket = new WebSocket(this.url);
      this.socket = socket;
      socket.addEventListener("message", (event) => this.onMessage(socket, event));
      socket.addEventListener("close", (event) => this.onClose(socket, event));
      this.lastFrameAt = Date.now();
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.keepAlive(socket), PING_EVERY_MS);
    }

    keepAlive(socket) {
      if (socket !== this.socket || socket.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this.lastFrameAt > SILENT_LIMIT_MS) {
        socket.close(4000, "silent"); // a half-open TCP link never fires "close" by itself
        return;
      }
      socket.send(JSON.stringify({ type: "ping" }));
    }

    onMessage(socket, event) {
      if (socket !== this.socket) return;
      this.lastFrameAt = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "snapshot") {
        this.attempt = 0; // only a snapshot proves the socket works (a 4401 also "opens")
        setConnection("live", "Live");
        emit("whalewatch:ingest", { banner: message.banner, serverTime: message.server_time });
        emit("whalewatch:snapshot", message);
      } else if (message.type === "whale.event") {
        emit("whalewatch:event", { event: message.event, matches: message.matches });
      } else if (message.type === "watch.hit") {
        emit("whalewatch:watch", message.hit); // the Watching page's (issue 21); only ours
      } else if (message.type === "ingest.status") {
        emit("whalewatch:ingest", { banner: message.banner, serverTime: message.server_time });
      }
    }

    onClose(socket, event) {
      if (socket !== this.socket) return;
      clearInterval(this.pingTimer);
      this.socket = null;
      if (event.code === CLOSE_UNAUTHENTICATED) {
        this.stopped = true;
        setConnection("offline", "Session ended: log in again to see live whales", true);
        return;
      }
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
      const delay = Math.round(base * (0.8 + Math.random() * 0.4));
      this.attempt += 1;
      setConnection("offline", `Disconnected: retrying in ${Math.ceil(delay / 1000)} s`);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    }

    retryNow() {
      // Back online or back in view: no point waiting out the backoff.
      if (this.retryTimer !== null) this.connect();
    }
  }

  function setConnection(state, text, offerLogin = false) {
    const node = document.getElementById("feed-connection");
    if (!node) return;
    node.dataset.state = state;
    if (offerLogin) {
      const next = encodeURIComponent(location.pathname + location.search);
      node.innerHTML = `${esc(text)} · <a href="/accounts/login/?next=${next}">Log in</a>`;
    } else {
      node.textContent = text;
    }
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // The feed asks for the same filtered snapshot as its URL; other pages need no whales.
    const query = feed ? location.search : "?whales=0";
    return `${scheme}//${location.host}${socketPath}${query}`;
  }

  const live = new LiveSocket(socketUrl());
  window.addEventListener("online", () => live.retryNow());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") live.retryNow();
  });
  window.WhaleWatch = Object.assign(window.WhaleWatch || {}, { live });

  // --- the feed ----------------------------------------------------------------------------

  if (feed) startFeed();
  // Listeners first, then the socket: the snapshot must find the feed ready.
  live.connect();

  function startFeed() {
    const pendingLimit = Number(feed.dataset.pendingLimit) || 100;
    const tables = {
      pending: { rows: document.getElementById("pending-rows"), limit: pendingLimit },
      recent: { rows: document.getElementById("recent-rows"), limit: RECENT_LIMIT },
    };
    const announcer = document.getElementById("feed-announcer");
    const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
    // chain_txid -> sequence of the newest event shown for that chain
    const shown = new Map();
    for (const row of feed.querySelectorAll("tr[data-chain]")) {
      shown.set(row.dataset.chain, Number(row.dataset.sequence) || 0);
    }

    document.addEventListener("whalewatch:snapshot", (event) => {
      rebuild(event.detail.whales || []);
    });
    document.addEventListener("whalewatch:event", (event) => apply(event.detail.event, event.detail.matches));
    setInterval(refreshAges, 5000);

    function rebuild(whales) {
      feed.setAttribute("aria-busy", "true");
      const highlighted = new Map(
        [...feed.querySelectorAll("tr.flash")].map((row) => [row.dataset.chain, row.className]),
      );
      shown.clear();
      const html = { pending: [], recent: [] };
      for (const whale of whales) {
        // The snapshot is filtered by the server already.
        if (shown.has(whale.chain_txid) || !whale.row_html) continue;
        shown.set(whale.chain_txid, whale.sequence || 0);
        html[panelFor(whale)].push(whale.row_html);
      }
      for (const [panel, table] of Object.entries(tables)) {
        table.rows.innerHTML = html[panel].slice(0, table.limit).join("");
      }
      for (const [chain, className] of highlighted) {
        const row = rowFor(chain);
        if (row) row.className = className;
      }
      updateCounts();
      feed.removeAttribute("aria-busy");
    }

    function apply(event, matches) {
      const whale = event && event.whale;
      if (!whale || !whale.chain_txid) return;
      const chain = whale.chain_txid;
      const sequence = Number(event.sequence) || 0;
      if (shown.has(chain) && sequence < shown.get(chain)) return; // older than what we show
      const existing = rowFor(chain);
      // `matches` is the server's verdict on this feed's filters (absent without filters).
      if (matches === false || whale.status === "replaced" || !event.row_html) {
        if (existing) existing.remove();
        shown.delete(chain);
        updateCounts();
        return;
      }
      shown.set(chain, sequence);
      const panel = panelFor(whale);
      const template = document.createElement("template");
      template.innerHTML = rowHtmlFor(event).trim();
      const row = template.content.firstElementChild;
      const table = tables[panel];
      if (existing && existing.parentElement === table.rows) {
        existing.replaceWith(row); // same place: a fee bump or replacement updates in place
        highlight(row, "flash-updated");
      } else {
        if (existing) existing.remove();
        table.rows.prepend(row);
        highlight(row, panel === "recent" ? `flash-${whale.status}` : "flash-new");
        while (table.rows.children.length > table.limit) table.rows.lastElementChild.remove();
      }
      announce(event.kind, whale);
      updateCounts();
    }

    function rowFor(chain) {
      return feed.querySelector(`tr[data-chain="${CSS.escape(chain)}"]`);
    }

    function highlight(row, className) {
      row.classList.add("flash", className);
      // Reduced motion gets a steady outline instead of the fade, for the same short time.
      if (reducedMotion.matches) row.classList.add("flash-static");
      setTimeout(() => row.classList.remove("flash", "flash-static", className), HIGHLIGHT_MS);
    }

    function announce(kind, whale) {
      const value = `${formatBtc(whale.value_btc)} BTC`;
      const messages = {
        seen: `New whale: ${value}, ${flowLabel(whale.flow).toLowerCase()}.`,
        confirmed: `Whale of ${value} confirmed in block ${whale.confirmed_height ?? "?"}.`,
        replaced: `Whale of ${value} was replaced by a fee bump.`,
        dropped: `Whale of ${value} dropped from the mempool.`,
        reorged: `Whale of ${value} is pending again after a reorg.`,
      };
      if (!messages[kind]) return;
      const line = document.createElement("span");
      line.textContent = messages[kind] + " ";
      announcer.append(line);
      while (announcer.childNodes.length > 5) announcer.firstChild.remove();
    }

    function updateCounts() {
      for (const [panel, table] of Object.entries(tables)) {
        const count = table.rows.children.length;
        document.getElementById(`${panel}-count`).textContent = String(count);
        document.getElementById(`${panel}-empty`).hidden = count > 0;
      }
    }
  }

  function panelFor(whale) {
    return whale.status === "pending" ? "pending" : "recent";
  }

  // --- display ------------------------------------------------------------------------------

  // The pushed row in this page's display currency (body data-currency), else the USD one.
  const CURRENCY = body.dataset.currency || "USD";
  const rowHtmlFor = (event) => (event.row_html_by_currency || {})[CURRENCY] || event.row_html;

  // Flow.choices from the server (base.html), so the announcements use the pages' words.
  const FLOW_LABELS = JSON.parse(document.getElementById("flow-labels")?.textContent || "{}");
  const flowLabel = (flow) => FLOW_LABELS[flow] || "Unknown";

  function formatBtc(text) {
    const amount = Number(text);
    if (!Number.isFinite(amount)) return "—";
    return amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function formatAge(iso) {
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (!Number.isFinite(seconds)) return "";
    if (seconds < 60) return `${Math.floor(seconds)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
    return `${Math.floor(seconds / 86400)} d`;
  }

  function refreshAges() {
    for (const node of document.querySelectorAll("time[data-age]")) {
      node.textContent = formatAge(node.getAttribute("datetime"));
    }
  }
})();
