// aion dashboard: plain JS, no build step. Reads the JSON API of aion/dashboard/app.py.
// What each view drew is kept on window.aionDash (the browser tests read it from there).
"use strict";

const IST_OFFSET_S = 19800; // chart times are epoch s + 05:30 so the axis reads IST
const TOKEN = window.AION_TOKEN || "";
const PAGE_DATE = new URLSearchParams(location.search).get("date") || "";

const state = (window.aionDash = {
  date: null,
  alerts: new Map(), // stream id -> alert
  received: {}, // stream id -> Date.now() when the event reached the page
  redis: null,
  instrument: null, // what the instrument view drew
  validation: null,
  health: null,
  view: null,
});

// -- small helpers ----------------------------------------------------------------------

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}

async function api(path, params = {}) {
  if (PAGE_DATE && !("date" in params)) params = { ...params, date: PAGE_DATE };
  const headers = TOKEN ? { Authorization: "Bearer " + TOKEN } : {};
  let resp;
  try {
    resp = await fetch(path + qs(params), { headers, cache: "no-store" });
  } catch (e) {
    showBanner("dashboard server unreachable: " + e);
    return null;
  }
  const body = await resp.json().catch(() => ({ error: "bad response " + resp.status }));
  if (resp.status === 503) {
    redisDown(body.error);
    return null;
  }
  if (!resp.ok) {
    showBanner(body.error || "HTTP " + resp.status, "warn");
    return null;
  }
  return body;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k ?? ""));
  return e;
}

const $ = (id) => document.getElementById(id);
const fmt = (x, d = 2) => (x === null || x === undefined || x === "" || isNaN(+x) ? "–" : (+x).toFixed(d));
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
const istHHMM = (barTime) => (barTime || "").slice(11, 16); // "2022-11-11T09:15:00+0530"

function alertChartTime(a) {
  // bar_time is the alert bar's start in IST with a +0530 offset
  const iso = a.bar_time.replace(/([+-]\d\d)(\d\d)$/, "$1:$2");
  return Math.floor(Date.parse(iso) / 1000) + IST_OFFSET_S;
}

let bannerTimer = null;
function showBanner(text, kind = "error") {
  const b = $("banner");
  b.textContent = text;
  b.className = "banner " + kind;
}
function hideBanner() {
  $("banner").className = "banner hidden";
}
function redisDown(error) {
  state.redis = false;
  showBanner("Redis is unreachable — showing what was loaded; retrying. (" + (error || "") + ")");
  $("live").textContent = "Redis down";
  $("live").className = "pill bad";
  if (!bannerTimer) bannerTimer = setInterval(probeRedis, 2000);
}
async function probeRedis() {
  const headers = TOKEN ? { Authorization: "Bearer " + TOKEN } : {};
  try {
    const r = await fetch("api/days", { headers, cache: "no-store" });
    if (r.ok) redisUp(true);
  } catch (e) {
    /* still down */
  }
}
function redisUp(reload) {
  const was = state.redis;
  state.redis = true;
  if (bannerTimer) {
    clearInterval(bannerTimer);
    bannerTimer = null;
  }
  hideBanner();
  $("live").textContent = "live";
  $("live").className = "pill ok";
  if (reload && was === false) route();
}

// -- alerts view ----------------------------------------------------------------------------

const ALERT_COLS = [
  (a) => istHHMM(a.bar_time),
  (a) => a.symbol,
  (a) => a.pattern,
  (a) => a.direction,
  (a) => fmt(a.entry),
  (a) => fmt(a.stop),
  (a) => fmt(a.target),
  (a) => a.quantity,
  (a) => fmt(a.risk_reward),
  (a) => fmt(a.confidence, 3),
];

function alertRow(a) {
  const tr = el("tr", { "data-id": a.id, class: a.direction === "long" ? "long" : "short" });
  ALERT_COLS.forEach((f, i) => tr.append(el("td", { class: i >= 4 ? "n" : "" }, String(f(a)))));
  tr.addEventListener("click", () => {
    location.hash = "#instrument" + qs({ symbol: a.symbol, alert: a.id });
  });
  return tr;
}

function alertVisible(a) {
  const p = $("f-pattern").value,
    s = $("f-side").value,
    sym = $("f-symbol").value.trim().toUpperCase();
  return (!p || a.pattern === p) && (!s || a.direction === s) && (!sym || a.symbol.toUpperCase().includes(sym));
}

function addAlert(a) {
  if (state.alerts.has(a.id)) return; // the stream never repeats one; belt and braces
  state.alerts.set(a.id, a);
  state.received[a.id] = Date.now();
  const body = $("alerts-table").tBodies[0];
  const tr = alertRow(a);
  tr.hidden = !alertVisible(a);
  // newest first: stream ids only grow, so a new alert goes on top
  body.insertBefore(tr, body.firstChild);
  const sel = $("f-pattern");
  if (![...sel.options].some((o) => o.value === a.pattern)) {
    const opts = [...sel.options].slice(1).map((o) => o.value).concat([a.pattern]).sort();
    sel.length = 1;
    opts.forEach((o) => sel.append(el("option", { value: o }, o)));
  }
  updateCount();
}

function updateCount() {
  const rows = $("alerts-table").tBodies[0].rows;
  let shown = 0;
  for (const r of rows) if (!r.hidden) shown++;
  $("alert-count").textContent = `${shown} of ${state.alerts.size} alerts`;
}

function applyFilters() {
  for (const tr of $("alerts-table").tBodies[0].rows) tr.hidden = !alertVisible(state.alerts.get(tr.dataset.id));
  updateCount();
}

function connectStream() {
  const src = new EventSource("api/alerts/stream" + qs({ date: PAGE_DATE, token: TOKEN }));
  src.addEventListener("alert", (ev) => addAlert(JSON.parse(ev.data)));
  src.addEventListener("status", (ev) => {
    const st = JSON.parse(ev.data);
    if (st.redis === false) redisDown(st.error);
    else {
      redisUp(true);
      if (st.date) {
        state.date = st.date;
        $("day").value = st.date;
      } else if (st.error) showBanner(st.error, "warn");
    }
  });
  src.onerror = () => {
    // EventSource reconnects by itself and sends Last-Event-ID = the last stream id seen
    $("live").textContent = "reconnecting";
    $("live").className = "pill warn";
  };
  state.stream = src;
}

// -- instrument view --------------------------------------------------------------------------

let chart = null,
  candles = null,
  volume = null,
  lines = {},
  priceLines = [];

function ensureChart() {
  if (chart) return;
  const box = $("chart");
  chart = LightweightCharts.createChart(box, {
    height: 480,
    layout: { background: { color: "#ffffff" }, textColor: "#222" },
    grid: { vertLines: { color: "#f0f0f0" }, horzLines: { color: "#f0f0f0" } },
    timeScale: { timeVisible: true, secondsVisible: false },
    rightPriceScale: { scaleMargins: { top: 0.05, bottom: 0.25 } },
    crosshair: { mode: 0 },
  });
  candles = chart.addCandlestickSeries({ priceLineVisible: false });
  volume = chart.addHistogramSeries({ priceFormat: { type: "volume" }, priceScaleId: "vol", lastValueVisible: false, priceLineVisible: false });
  chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  const style = {
    ema_20: { color: "#f5a623", lineWidth: 1 },
    ema_50: { color: "#7b61ff", lineWidth: 1 },
    vwap: { color: "#1e88e5", lineWidth: 2 },
    vwap_upper_1: { color: "#1e88e5", lineWidth: 1, lineStyle: 2 },
    vwap_lower_1: { color: "#1e88e5", lineWidth: 1, lineStyle: 2 },
    vwap_upper_2: { color: "#90caf9", lineWidth: 1, lineStyle: 2 },
    vwap_lower_2: { color: "#90caf9", lineWidth: 1, lineStyle: 2 },
  };
  for (const [name, opts] of Object.entries(style))
    lines[name] = chart.addLineSeries({ ...opts, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false });
  chart.timeScale().subscribeVisibleLogicalRangeChange(() => requestAnimationFrame(drawProfile));
  new ResizeObserver(() => {
    chart.applyOptions({ width: box.clientWidth });
    requestAnimationFrame(drawProfile);
  }).observe(box);
}

async function loadDays() {
  const r = await api("api/days");
  if (!r) return;
  const sel = $("day");
  sel.textContent = "";
  r.dates.slice().reverse().forEach((d) => sel.append(el("option", { value: d }, d)));
  if (state.date) sel.value = state.date;
  sel.addEventListener("change", () => {
    // another day is another page: its own alert stream
    const p = new URLSearchParams(location.search);
    p.set("date", sel.value);
    location.search = p.toString();
  });
}

async function loadSymbols() {
  const r = await api("api/symbols");
  if (!r) return;
  const dl = $("i-symbols");
  dl.textContent = "";
  r.symbols.forEach((s) => dl.append(el("option", { value: s })));
}

async function showInstrument(params) {
  const symbol = params.get("symbol");
  const tf = params.get("tf") || "1m";
  $("i-tf").value = tf;
  if (!symbol) {
    $("i-title").textContent = "pick a symbol (or click an alert)";
    return;
  }
  $("i-symbol").value = symbol;
  const t0 = performance.now();
  const r = await api("api/instrument", { symbol, tf });
  if (!r) return;
  ensureChart();
  const bars = r.bars;
  candles.setData(bars.map((b) => ({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close })));
  volume.setData(bars.map((b) => ({ time: b.time, value: b.volume, color: b.close >= b.open ? "#a5d6a7" : "#ef9a9a" })));
  for (const [name, s] of Object.entries(lines)) s.setData(r.series[name] || []);
  // every alert of the day on this instrument as a marker on the bar holding its minute
  const times = bars.map((b) => b.time);
  const barOf = (t) => {
    let lo = 0,
      hi = times.length - 1,
      best = times[0];
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid] <= t) {
        best = times[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  };
  const chosen = r.alerts.find((a) => a.id === params.get("alert"));
  const markers = r.alerts
    .map((a) => ({
      time: barOf(alertChartTime(a)),
      position: a.direction === "long" ? "belowBar" : "aboveBar",
      color: a.direction === "long" ? "#2e7d32" : "#c62828",
      shape: a.direction === "long" ? "arrowUp" : "arrowDown",
      text: chosen && a.id === chosen.id ? a.pattern : "", // the chosen alert is labelled
      id: a.id,
    }))
    .sort((x, y) => x.time - y.time);
  candles.setMarkers(markers);
  priceLines.forEach((p) => candles.removePriceLine(p));
  priceLines = [];
  const drawn = [];
  if (chosen) {
    for (const [title, key, color] of [
      ["entry", "entry", "#555"],
      ["stop", "stop", "#c62828"],
      ["target", "target", "#2e7d32"],
    ]) {
      const price = +chosen[key];
      priceLines.push(candles.createPriceLine({ price, color, lineWidth: 1, lineStyle: 0, axisLabelVisible: true, title }));
      drawn.push({ title, price });
    }
  }
  chart.timeScale().fitContent();
  state.instrument = {
    symbol: r.symbol,
    timeframe: r.timeframe,
    candles: bars.length,
    candleData: bars,
    markers,
    priceLines: drawn,
    series: Object.fromEntries(Object.entries(r.series).map(([k, v]) => [k, v.length])),
    profile: r.profile,
    fetchToDrawMs: performance.now() - t0, // API call to chart data set
    drawnAt: performance.now(), // ms since this page's navigation started
  };
  $("i-title").textContent = `${r.symbol} ${r.date} · ${bars.length} bars of ${r.timeframe} · ${r.alerts.length} alerts`;
  sideTables(r);
  alertList(r.alerts);
  requestAnimationFrame(drawProfile);
}

function kv(table, rows) {
  table.textContent = "";
  for (const [k, v] of rows) table.append(el("tr", {}, el("th", {}, k), el("td", { class: "n" }, v)));
}

function sideTables(r) {
  const p = r.profile || {};
  kv($("i-profile"), [
    ["POC", fmt(p.poc)],
    ["value area high", fmt(p.vah)],
    ["value area low", fmt(p.val)],
    ["strength", fmt(p.strength, 3)],
    ["POC shift (ticks)", fmt(p.poc_shift, 0)],
  ]);
  const v = r.rvol || {};
  kv($("i-rvol"), [
    ["as of (IST)", v.time || "–"],
    ["cumulative RVOL", fmt(v.rvol_cum)],
    ["bar RVOL", fmt(v.rvol_bar)],
    ["VIX regime", v.regime || "–"],
    ["threshold multiplier", fmt(v.multiplier)],
  ]);
  const ind = r.indicators || {};
  const names = ["ema_20", "ema_50", "vwap", "rsi_14", "atr_14", "macd", "macd_signal", "adx_14", "bb_upper", "bb_lower", "stoch_k", "mfi_14"];
  kv($("i-ind"), names.filter((n) => n in ind).map((n) => [n, fmt(ind[n])]));
}

function alertList(alerts) {
  const body = $("i-alerts").tBodies[0];
  body.textContent = "";
  for (const a of alerts) {
    const tr = el(
      "tr",
      { "data-id": a.id },
      el("td", {}, istHHMM(a.bar_time)),
      el("td", {}, a.pattern),
      el("td", {}, a.direction),
      el("td", { class: "n" }, fmt(a.entry)),
      el("td", { class: "n" }, fmt(a.stop)),
      el("td", { class: "n" }, fmt(a.target)),
      el("td", { class: "n" }, fmt(a.confidence, 3))
    );
    tr.addEventListener("click", () => {
      location.hash = "#instrument" + qs({ symbol: a.symbol, alert: a.id, tf: $("i-tf").value });
    });
    body.append(tr);
  }
}

function drawProfile() {
  const cv = $("profile");
  const ctx = cv.getContext("2d");
  cv.height = 480;
  ctx.clearRect(0, 0, cv.width, cv.height);
  const p = state.instrument && state.instrument.profile;
  if (!p || !p.bins || !candles) return;
  const maxV = Math.max(...p.bins.map((b) => b[1]));
  const half = (p.bin_width || 0) / 2;
  for (const [price, vol] of p.bins) {
    const y0 = candles.priceToCoordinate(price + half),
      y1 = candles.priceToCoordinate(price - half);
    if (y0 === null || y1 === null) continue;
    const inVa = price >= p.val && price <= p.vah;
    ctx.fillStyle = price === p.poc ? "#e65100" : inVa ? "#64b5f6" : "#cfd8dc";
    ctx.fillRect(0, Math.min(y0, y1), (vol / maxV) * (cv.width - 40), Math.max(1, Math.abs(y1 - y0)));
  }
  ctx.font = "11px sans-serif";
  for (const [label, price, color] of [
    ["VAH", p.vah, "#1565c0"],
    ["POC", p.poc, "#e65100"],
    ["VAL", p.val, "#1565c0"],
  ]) {
    const y = price === null ? null : candles.priceToCoordinate(price);
    if (y === null) continue;
    ctx.fillStyle = color;
    ctx.fillRect(0, y, cv.width - 36, 1);
    ctx.fillText(label, cv.width - 32, y + 4);
  }
}

// -- validation view ----------------------------------------------------------------------

async function showValidation() {
  const r = await api("api/validation");
  if (!r) return;
  state.validation = r;
  const sel = $("v-window");
  if (!sel.length) {
    r.windows_min.forEach((w) => sel.append(el("option", { value: w }, w + " min")));
    sel.value = r.windows_min.includes(5) ? "5" : String(r.windows_min[0]);
  }
  $("v-title").textContent = `${r.alerts} alerts of ${r.date}; baseline: ${r.baseline.draws} random entries per alert from its bar to ${r.baseline.jitter_min} min after, seed ${r.baseline.seed}`;
  drawValidation();
}

function ci(lo, hi, p) {
  if (lo === null || hi === null) return "–";
  return p ? `[${pct(lo)}, ${pct(hi)}]` : `[${fmt(lo)}, ${fmt(hi)}]`;
}

function drawValidation() {
  const r = state.validation;
  if (!r) return;
  const w = +$("v-window").value;
  const rows = r.rows.filter((x) => x.window_min === w);
  const body = $("v-table").tBodies[0];
  body.textContent = "";
  for (const x of rows) {
    const cells = [
      x.pattern, x.window_min, x.alerts, x.n, pct(x.hit_rate), ci(x.hit_lo, x.hit_hi, true), fmt(x.mean_r),
      ci(x.r_lo, x.r_hi), x.base_n, pct(x.base_hit_rate), ci(x.base_hit_lo, x.base_hit_hi, true),
      fmt(x.base_mean_r), ci(x.base_r_lo, x.base_r_hi),
    ];
    body.append(el("tr", { "data-pattern": x.pattern, class: x.pattern === "(all)" ? "total" : "" }, ...cells.map((c, i) => el("td", { class: i && i !== 5 && i !== 7 && i !== 10 && i !== 12 ? "n" : "" }, String(c)))));
  }
  // chart: per pattern the measure with its 95% interval, next to the random-entry baseline
  const hit = $("v-metric").value === "hit";
  const key = hit ? ["hit_rate", "hit_lo", "hit_hi"] : ["mean_r", "r_lo", "r_hi"];
  const vals = rows.flatMap((x) => [x[key[1]], x[key[2]], x["base_" + key[1]], x["base_" + key[2]], x[key[0]]]).filter((v) => v !== null);
  const lo = Math.min(hit ? 0 : -1, ...vals),
    hi = Math.max(1, ...vals);
  const W = 900,
    rowH = 26,
    left = 190,
    H = rows.length * rowH + 30;
  const X = (v) => left + ((v - lo) / (hi - lo)) * (W - left - 20);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  add("line", { x1: X(0), x2: X(0), y1: 0, y2: H - 20, stroke: "#999", "stroke-dasharray": "3 3" });
  rows.forEach((x, i) => {
    const y = i * rowH + 8;
    add("text", { x: 4, y: y + 12, "font-size": 12, "data-pattern": x.pattern }, x.pattern);
    // a bar from 0 to the value (mean R may be negative) and its 95% interval as a whisker
    const bar = (v, vlo, vhi, dy, color) => {
      if (v === null) return;
      const a = X(Math.min(0, v)),
        b = X(Math.max(0, v));
      add("rect", { x: a, y: y + dy, width: Math.max(1, b - a), height: 8, fill: color });
      if (vlo !== null && vhi !== null) add("line", { x1: X(vlo), x2: X(vhi), y1: y + dy + 4, y2: y + dy + 4, stroke: "#222" });
    };
    bar(x[key[0]], x[key[1]], x[key[2]], 0, "#1e88e5");
    bar(x["base_" + key[0]], x["base_" + key[1]], x["base_" + key[2]], 10, "#bdbdbd");
  });
  for (const t of [lo, (lo + hi) / 2, hi]) add("text", { x: X(t) - 12, y: H - 6, "font-size": 11 }, hit ? pct(t) : fmt(t));
  const box = $("v-chart");
  box.textContent = "";
  box.append(el("div", { class: "legend" }, el("span", { class: "sw", style: "background:#1e88e5" }), (hit ? "hit rate" : "mean R") + " (95% CI) ", el("span", { class: "sw", style: "background:#bdbdbd" }), "random-entry baseline (95% CI)"));
  box.append(svg);
  state.validation.shown = rows.map((x) => x.pattern);
}

// -- health view ----------------------------------------------------------------------------

async function showHealth() {
  const r = await api("api/health");
  if (!r) return;
  state.health = r;
  const rep = r.report;
  $("h-status").textContent = rep.status;
  $("h-status").className = "pill " + ({ ok: "ok", info: "ok", degraded: "warn", down: "bad" }[rep.status] || "");
  $("h-title").textContent = "as `aion health --json` reports" + (r.date ? "; session " + r.date : "");
  const fill = (id, rows) => {
    const body = $(id).tBodies[0];
    body.textContent = "";
    for (const cells of rows) body.append(el("tr", {}, ...cells.map((c) => el("td", {}, c === null || c === undefined ? "–" : String(c)))));
  };
  fill("h-checks", rep.checks.map((c) => [c.name, c.status, c.value, c.detail]));
  fill("h-feeds", Object.entries(rep.feeds || {}).map(([n, f]) => [n, f.age_s, `frames ${f.frames ?? "–"}`]));
  fill("h-scanners", Object.entries(rep.scanners || {}).map(([n, s]) => [n, s.redis_reachable ? "reachable" : "UNREACHABLE", s.pending_commands, s.dropped_commands]));
  const istClock = (ms) => new Date(ms + IST_OFFSET_S * 1000).toISOString().slice(0, 19).replace("T", " ");
  fill("h-runs", r.runs.map((u) => [istClock(+u.id.split("-")[0]), u.stop_reason, u.frames, u.ticks, u.alerts, u.queue_drops, (u.feed_gaps || []).length, u.feed_gap_s]));
  fill("h-gaps", r.gaps.map((g) => [g.connection, g.start_ns ? istClock(+g.start_ns / 1e6) : "–", g.end_ns ? fmt(g.duration_s, 1) : "open", g.reason, g.tokens]));
  document.querySelectorAll("#h-checks td:nth-child(2)").forEach((td) => (td.className = "st-" + td.textContent));
}

// -- routing --------------------------------------------------------------------------------

let healthTimer = null;
function route() {
  const [name, query] = (location.hash.slice(1) || "alerts").split("?");
  const view = ["alerts", "instrument", "validation", "health"].includes(name) ? name : "alerts";
  state.view = view;
  document.querySelectorAll(".view").forEach((s) => s.classList.toggle("hidden", s.id !== "view-" + view));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  if (healthTimer) {
    clearInterval(healthTimer);
    healthTimer = null;
  }
  const params = new URLSearchParams(query || "");
  if (view === "instrument") showInstrument(params);
  if (view === "validation") showValidation();
  if (view === "health") {
    showHealth();
    healthTimer = setInterval(showHealth, 5000);
  }
}

window.addEventListener("DOMContentLoaded", () => {
  ["f-pattern", "f-side"].forEach((id) => $(id).addEventListener("change", applyFilters));
  $("f-symbol").addEventListener("input", applyFilters);
  const go = () => {
    const symbol = $("i-symbol").value.trim().toUpperCase();
    if (symbol) location.hash = "#instrument" + qs({ symbol: symbol.includes(":") ? symbol : "NSE:" + symbol, tf: $("i-tf").value });
  };
  $("i-go").addEventListener("click", go);
  $("i-symbol").addEventListener("keydown", (e) => e.key === "Enter" && go());
  $("i-tf").addEventListener("change", go);
  $("v-window").addEventListener("change", drawValidation);
  $("v-metric").addEventListener("change", drawValidation);
  window.addEventListener("hashchange", route);
  connectStream();
  loadDays();
  loadSymbols();
  route();
});
