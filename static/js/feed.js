// The dashboard's live socket (every logged-in page) and the live feed (the home page).
//
// The channel layer behind /ws/whales/ is at-most-once, so the server sends a snapshot from the
// database on every connect and the feed is rebuilt from it; pushed events are applied on top.
// A lost socket reconnects with exponential backoff (1 s doubling to 30 s, ±20 % jitter) and
// takes a fresh snapshot, so nothing is missed across a reconnect.
//
// Row markup and filter rules mirror templates/dashboard/_whale_row.html and
// dashboard/feed_filters.py; keep them in step.
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
        emit("whalewatch:ingest", { status: message.ingest, serverTime: message.server_time });
        emit("whalewatch:snapshot", message);
      } else if (message.type === "whale.event") {
        emit("whalewatch:event", message.event);
      } else if (message.type === "watch.hit") {
        emit("whalewatch:watch", message.hit); // the Watching page's (issue 21); only ours
      } else if (message.type === "ingest.status") {
        emit("whalewatch:ingest", { status: message.status, serverTime: message.server_time });
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
    const filters = JSON.parse(document.getElementById("feed-filters-data").textContent || "{}");
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
    document.addEventListener("whalewatch:event", (event) => apply(event.detail));
    setInterval(refreshAges, 5000);

    function rebuild(whales) {
      feed.setAttribute("aria-busy", "true");
      const highlighted = new Map(
        [...feed.querySelectorAll("tr.flash")].map((row) => [row.dataset.chain, row.className]),
      );
      shown.clear();
      const html = { pending: [], recent: [] };
      for (const whale of whales) {
        if (!matchesFilters(whale, filters) || shown.has(whale.chain_txid)) continue;
        shown.set(whale.chain_txid, whale.sequence || 0);
        html[panelFor(whale)].push(rowHtml(whale, whale.sequence || 0));
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

    function apply(event) {
      const whale = event && event.whale;
      if (!whale || !whale.chain_txid) return;
      const chain = whale.chain_txid;
      const sequence = Number(event.sequence) || 0;
      if (shown.has(chain) && sequence < shown.get(chain)) return; // older than what we show
      const existing = rowFor(chain);
      if (!matchesFilters(whale, filters) || whale.status === "replaced") {
        if (existing) existing.remove();
        shown.delete(chain);
        updateCounts();
        return;
      }
      shown.set(chain, sequence);
      const panel = panelFor(whale);
      const template = document.createElement("template");
      template.innerHTML = rowHtml(whale, sequence).trim();
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

  // --- filters and formatting (mirror dashboard/feed_filters.py and whale_format.py) -------

  function satsOf(btcText) {
    const [whole, fraction = ""] = String(btcText).split(".");
    return Number(whole) * 1e8 + Number((fraction + "00000000").slice(0, 8));
  }

  function matchesFilters(whale, filters) {
    if (filters.flow && whale.flow !== filters.flow) return false;
    if (filters.status && whale.status !== filters.status) return false;
    if (filters.entity) {
      const wanted = filters.entity.trim().toLowerCase();
      const sides = [whale.from_entity, whale.to_entity].map((e) => (e || "").toLowerCase());
      if (!sides.includes(wanted)) return false;
    }
    if (filters.min_btc !== undefined && whale.value_sat < satsOf(filters.min_btc)) return false;
    if (filters.max_btc !== undefined && whale.value_sat > satsOf(filters.max_btc)) return false;
    if (filters.urgency && bandOf(whale.prediction) !== filters.urgency) return false;
    return true;
  }

  // Flow.choices from the server (base.html), so the words are the pages' words.
  const FLOW_LABELS = JSON.parse(document.getElementById("flow-labels")?.textContent || "{}");
  const flowLabel = (flow) => FLOW_LABELS[flow] || "Unknown";
  const bandOf = (p) => (p && p.band) || "unscored";
  const urgencyPercent = (p) =>
    p && typeof p.urgency === "number" ? Math.max(0, Math.min(100, Math.round(p.urgency * 100))) : 0;

  // Fiat, as dashboard/templatetags/whale_format.py and detection/domain/prices.py write it.
  const CURRENCY = body.dataset.currency || "USD";
  const CURRENCY_SYMBOLS = { USD: "$", EUR: "€", GBP: "£", JPY: "¥", AUD: "A$", CAD: "C$" };
  const COMPACT_STEPS = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];

  function withCurrency(number, code) {
    const symbol = CURRENCY_SYMBOLS[code];
    return symbol ? `${symbol}${number}` : `${code} ${number}`;
  }

  function exactMoney(text, code) {
    const [whole, frac = ""] = String(text).split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return withCurrency(`${grouped}.${(frac + "00").slice(0, 2)}`, code);
  }

  function compactMoney(text, code) {
    const amount = Number(text);
    for (const [step, suffix] of COMPACT_STEPS) {
      if (amount >= step) {
        const short = (amount / step).toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
        return withCurrency(`${short}${suffix}`, code);
      }
    }
    return exactMoney(text, code);
  }

  function fiatHtml(w) {
    const values = (w.fiat && w.fiat.moved) || {};
    for (const code of [CURRENCY, "USD"]) {
      if (values[code] != null) {
        return ` · <span class="fiat" title="${esc(exactMoney(values[code], code))}">${esc(compactMoney(values[code], code))}</span>`;
      }
    }
    return "";
  }

  function formatBtc(text) {
    const amount = Number(text);
    if (!Number.isFinite(amount)) return "—";
    return amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function formatFeeRate(rate) {
    if (typeof rate !== "number") return "fee unknown";
    const digits = rate < 100 ? 1 : 0;
    return `${rate.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })} sat/vB`;
  }

  // The server phrases every prediction once (detection/domain/wording.py), so the live row
  // says exactly what the page says.
  function predictionWords(p) {
    return (p && p.words) || { target: "no prediction", detail: "" };
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

  const shortTxid = (txid) => `${txid.slice(0, 8)}…${txid.slice(-6)}`;

  function rowHtml(w, sequence) {
    const p = w.prediction;
    const band = bandOf(p);
    const percent = urgencyPercent(p);
    const urgencyLabel = `Urgency ${band}` + (p && typeof p.urgency === "number" ? `, ${percent} of 100` : "");
    const entity = (name) =>
      `<span class="entity${name ? "" : " unlabelled"}">${esc(name || "unlabelled")}</span>`;
    let target;
    if (w.status === "confirmed") {
      const waited = typeof w.blocks_waited === "number"
        ? `<span class="sub">after ${w.blocks_waited} block${w.blocks_waited === 1 ? "" : "s"}</span>` : "";
      target = `<span>block ${esc(w.confirmed_height ?? "?")}</span>${waited}`;
    } else {
      const words = predictionWords(p);
      target = `<span>${esc(words.target)}</span><span class="sub">${esc(words.detail)}</span>`;
    }
    const badges = [`<span class="badge status status-${esc(w.status)}">${esc(w.status)}</span>`];
    if (w.txid !== w.chain_txid) {
      badges.push('<span class="badge rbf" title="A fee bump replaced the first version">replaced (RBF)</span>');
    } else if ((w.shape_tags || []).includes("rbf_signalled")) {
      badges.push('<span class="badge rbf" title="Signals replace-by-fee">RBF</span>');
    }
    if (w.conflict) badges.push('<span class="badge conflict" title="A conflicting spend was seen">conflict</span>');
    if (p && p.fee_spike) badges.push('<span class="badge spike" title="Fees are spiking: the ETA is less certain">fee spike</span>');
    const moved = w.moved_btc ?? w.value_btc;
    return `<tr class="whale-row status-${esc(w.status)}" data-chain="${esc(w.chain_txid)}" data-sequence="${sequence}">
  <td class="col-value" data-label="Value">
    <a class="value" href="/whales/${esc(w.txid)}/" title="${esc(moved)} BTC moved · open details">${formatBtc(moved)} <abbr title="bitcoin">BTC</abbr></a>${fiatHtml(w)}
    <span class="sub">${moved !== w.value_btc && w.value_btc != null ? `of ${formatBtc(w.value_btc)} total · ` : ""}<span class="txid">${esc(shortTxid(w.txid))}</span></span>
  </td>
  <td class="col-flow" data-label="From → to">
    <span class="entities">${entity(w.from_entity)} <span aria-label="to">→</span> ${entity(w.to_entity)}</span>
    <span class="badge flow flow-${esc(w.flow)}">${esc(flowLabel(w.flow))}</span>
  </td>
  <td class="col-fee" data-label="Fee &amp; urgency">
    <span class="fee-rate">${esc(formatFeeRate(w.fee_rate))}</span>
    <span class="urgency band-${esc(band)}" role="img" aria-label="${esc(urgencyLabel)}">
      <span class="urgency-track"><span class="urgency-fill" style="width: ${percent}%"></span></span>
      <span class="urgency-label">${esc(band)}</span>
    </span>
  </td>
  <td class="col-eta" data-label="Predicted">${target}</td>
  <td class="col-status" data-label="Status">${badges.join(" ")}</td>
  <td class="col-age" data-label="Age"><time datetime="${esc(w.first_seen_at)}" data-age>${esc(formatAge(w.first_seen_at))}</time></td>
</tr>`;
  }
})();
