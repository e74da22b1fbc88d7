// The wavespeed-mock inspector: reads the /_mock/ JSON control API every few seconds and draws what it says.
//
// Rules this file keeps:
// - Every string from the server reaches the page through textContent or an attribute, never innerHTML: prompts,
//   paths and bodies are whatever a client sent.
// - Tenants are shown as the control API names them (a "tk_" fingerprint). A value that is not one (an older
//   server that still reports raw API keys) is replaced by "key #N (hidden)": nothing is derived from keys here.
// - The control token, when given, goes in the X-Mock-Control-Token header of every control call and lives in
//   sessionStorage, not in the address bar.
"use strict";

(() => {
  const POLL_MS = 2000;
  const TOKEN_HEADER = "X-Mock-Control-Token";
  const TOKEN_KEY = "wavespeed-mock.control-token";
  const JOURNAL_ROWS = 200;
  const PREDICTION_CARDS = 200;
  const FILTERS = ["method", "path", "status", "tenant", "kind"];
  const FINGERPRINT = /^tk_[0-9A-Za-z_-]{4,64}$/;
  const PLACEHOLDER = /^<[a-z ]+>$/; // "<redacted>", "<all>": markers, not keys
  // Headers that carry credentials: never drawn, even redacted.
  const SECRET_HEADERS = new Set(["authorization", "proxy-authorization", "cookie", "set-cookie",
    "x-mock-control-token"]);
  const TERMINAL = new Set(["completed", "failed", "cancelled", "timeout"]);

  // The fake may sit behind a path prefix: everything is addressed relative to where /_mock/ui is.
  const BASE = location.pathname.replace(/\/_mock\/ui\/?$/, "");

  const state = {
    paused: false,
    timer: null,
    refreshes: 0,
    generation: 0,
    rendered: new Map(), // section -> JSON last drawn, so unchanged sections keep their DOM (open details, images)
    hiddenTenants: new Map(), // raw value -> number; only so two hidden tenants can be told apart
    thumbs: new Map(), // image src -> <img>, reused so a redraw never downloads (or journals) an image again
    filters: {},
    unavailable: new Set(), // optional control paths this server answered 404/405
  };

  // --- DOM helpers -------------------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function replace(node, ...children) {
    node.replaceChildren();
    return append(node, children);
  }

  function empty(text) {
    return el("p", { class: "empty" }, text);
  }

  function table(headers, rows, attrs) {
    return el("table", attrs,
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows));
  }

  function badge(text, kind) {
    return el("span", { class: `badge ${kind || ""}`.trim() }, text);
  }

  function statusBadge(status) {
    return badge(status || "?", `status-${String(status).replace(/[^a-z]/g, "")}`);
  }

  function httpBadge(status) {
    if (status === null || status === undefined) return badge("no answer", "bad");
    const kind = status >= 500 ? "bad" : status >= 400 ? "warn" : status >= 300 ? "info" : "ok";
    return badge(String(status), kind);
  }

  function pad(n, width) {
    return String(n).padStart(width || 2, "0");
  }

  function clockTime(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "";
    const d = new Date(seconds * 1000);
    const whole = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    // Webhook timestamps are whole seconds (as signed): ".000" would claim a precision they do not have.
    return Number.isInteger(seconds) ? whole : `${whole}.${pad(d.getMilliseconds(), 3)}`;
  }

  function isoTime(text) {
    const ms = Date.parse(text);
    return isNaN(ms) ? String(text || "") : clockTime(ms / 1000);
  }

  function short(value, limit) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    if (text === undefined) return "";
    return text.length > limit ? `${text.slice(0, limit)}… (${text.length} chars)` : text;
  }

  // Bodies may hold megabytes of base64: shorten long strings before printing them.
  function shrink(value, depth) {
    if (typeof value === "string") {
      if (value.startsWith("data:") && value.length > 80) return `${value.slice(0, 40)}… (${value.length} chars)`;
      return value.length > 2000 ? `${value.slice(0, 2000)}… (${value.length} chars)` : value;
    }
    if (Array.isArray(value)) return (depth || 0) > 6 ? "[…]" : value.map((v) => shrink(v, (depth || 0) + 1));
    if (value && typeof value === "object") {
      if ((depth || 0) > 6) return "{…}";
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shrink(v, (depth || 0) + 1)]));
    }
    return value;
  }

  function pre(value) {
    return el("pre", { class: "json" }, typeof value === "string" ? value : JSON.stringify(shrink(value), null, 2));
  }

  function details(summary, key, ...body) {
    const node = el("details", { dataset: { key } }, el("summary", {}, summary), body);
    if (openDetails.has(key)) node.open = true;
    node.addEventListener("toggle", () => (node.open ? openDetails.add(key) : openDetails.delete(key)));
    return node;
  }
  const openDetails = new Set();

  // --- tenants ------------------------------------------------------------------------------------------------

  function tenantLabel(value) {
    if (value === null || value === undefined) return { text: "any tenant", cls: "any" };
    const text = String(value);
    if (FINGERPRINT.test(text)) return { text, cls: "fingerprint", filterable: true };
    if (PLACEHOLDER.test(text)) return { text, cls: "any" };
    // Not a fingerprint: most likely a raw API key from a server that predates fingerprints. Keep it off screen.
    if (!state.hiddenTenants.has(text)) state.hiddenTenants.set(text, state.hiddenTenants.size + 1);
    return { text: `key #${state.hiddenTenants.get(text)} (hidden)`, cls: "hidden-key",
      title: "this server reports raw API keys; the inspector does not show them" };
  }

  function tenantChip(value) {
    const label = tenantLabel(value);
    if (!label.filterable) return el("span", { class: `tenant ${label.cls}`, title: label.title }, label.text);
    const button = el("button", { type: "button", class: `tenant ${label.cls}`, title: "filter the journal by this tenant" },
      label.text);
    button.addEventListener("click", () => {
      $("journal-filters").elements.tenant.value = label.text;
      applyFilters();
      $("journal").scrollIntoView();
    });
    return button;
  }

  // --- images -------------------------------------------------------------------------------------------------

  const BASE64_KINDS = [["/9j/", "image/jpeg"], ["iVBORw0KGgo", "image/png"], ["UklGR", "image/webp"],
    ["R0lGOD", "image/gif"]];

  // Where the browser can load a picture from without leaving this fake: its own /media/ files (whatever host
  // the client used to reach it) and data: images. Anything else is shown as text: the page fetches nothing
  // from other hosts (its Content-Security-Policy would refuse anyway).
  function imageSource(value) {
    if (typeof value !== "string" || !value) return null;
    if (/^data:image\/[a-z0-9.+-]+[;,]/i.test(value)) return value;
    if (!/^(https?:\/\/|\/)/i.test(value)) {
      const kind = BASE64_KINDS.find(([prefix]) => value.startsWith(prefix));
      return kind && /^[A-Za-z0-9+/=\s]+$/.test(value.slice(0, 200)) ? `data:${kind[1]};base64,${value}` : null;
    }
    let url;
    try {
      url = new URL(value, location.href);
    } catch (_) {
      return null;
    }
    if (url.origin === location.origin) return url.href;
    const prefix = `${BASE}/media/`;
    if (/^https?:$/.test(url.protocol) && url.pathname.startsWith(prefix)) {
      return `${location.origin}${url.pathname}${url.search}`;
    }
    return null;
  }

  function thumbnail(value, label, used) {
    const src = imageSource(value);
    if (!src) {
      return el("span", { class: "external", title: "not loaded: not served by this fake" }, short(value, 120));
    }
    let img = state.thumbs.get(src);
    if (!img || used.has(src)) {
      img = el("img", { class: "thumb", alt: label, decoding: "async" });
      img.addEventListener("error", () => img.classList.add("broken"));
      img.src = src;
      if (!used.has(src)) state.thumbs.set(src, img);
    }
    img.alt = label;
    used.add(src);
    const title = value.startsWith("data:") || !/^(https?:\/\/|\/)/i.test(value) ? label : value;
    if (src.startsWith("data:")) return el("span", { class: "thumb-frame", title }, img);
    return el("a", { class: "thumb-frame", href: src, target: "_blank", rel: "noopener noreferrer", title }, img);
  }

  function forgetUnusedThumbs(used) {
    for (const src of [...state.thumbs.keys()]) if (!used.has(src)) state.thumbs.delete(src);
  }

  // --- talking to the control API -----------------------------------------------------------------------------

  class ControlError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (_) {
      return "";
    }
  }

  function storeToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // Storage refused (private mode): the token then lasts as long as this page.
    }
    memoryToken = value;
  }
  let memoryToken = "";

  function currentToken() {
    return token() || memoryToken;
  }

  async function control(method, path, options) {
    const { query, body } = options || {};
    const url = new URL(`${BASE}/_mock${path}`, location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== "" && value !== null && value !== undefined) url.searchParams.set(name, value);
    }
    const headers = { Accept: "application/json" };
    const secret = currentToken();
    if (secret) headers[TOKEN_HEADER] = secret;
    const init = { method, headers, cache: "no-store", credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      throw new ControlError(0, `cannot reach the fake (${error.message})`);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (!response.ok) {
      const message = payload && typeof payload.message === "string" ? payload.message : response.statusText;
      throw new ControlError(response.status, message || `HTTP ${response.status}`);
    }
    return payload && typeof payload === "object" && "data" in payload ? payload.data : payload;
  }

  // A section the server may not offer (yet): null when it answers 404 or 405. A server's routes do not change
  // while it runs, so one such answer is enough: the page stops asking.
  async function optional(path) {
    if (state.unavailable.has(path)) return null;
    try {
      return await control("GET", path);
    } catch (error) {
      if (error.status === 404 || error.status === 405) {
        state.unavailable.add(path);
        return null;
      }
      throw error;
    }
  }

  // --- the refresh cycle --------------------------------------------------------------------------------------

  const SOURCES = {
    health: () => control("GET", "/health"),
    predictions: () => control("GET", "/predictions"),
    journal: () => control("GET", "/journal", { query: state.filters }),
    unmatched: () => control("GET", "/journal/unmatched"),
    generic: () => optional("/generic"),
    faults: () => control("GET", "/faults"),
    outcomes: () => control("GET", "/outcomes"),
    behaviour: () => optional("/behaviour"),
    webhooks: () => control("GET", "/webhooks/deliveries"),
  };

  async function refresh() {
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
    const generation = ++state.generation;
    const names = Object.keys(SOURCES);
    const results = await Promise.allSettled(names.map((name) => SOURCES[name]()));
    if (generation !== state.generation) return; // a newer refresh started meanwhile: its answers win
    const errors = [];
    names.forEach((name, i) => {
      const result = results[i];
      if (result.status === "fulfilled") draw(name, result.value);
      else errors.push([name, result.reason]);
    });
    showErrors(errors);
    $("updated").textContent = `updated ${clockTime(Date.now() / 1000)}`;
    document.body.dataset.loaded = String(generation);
  }

  function showErrors(errors) {
    const banner = $("banner");
    if (!errors.length) {
      banner.hidden = true;
      banner.replaceChildren();
      return;
    }
    const unauthorized = errors.find(([, e]) => e.status === 401 || e.status === 403);
    if (unauthorized) {
      const rejected = currentToken() !== "";
      replace(banner,
        el("strong", {}, rejected ? "Control token rejected." : "Control token required."),
        ` This fake protects its control API (--control-token). ${rejected
          ? "The token this page sends was not accepted; enter the right one above."
          : "Open /_mock/ui?token=… or enter the token above."}`,
        el("span", { class: "detail" }, ` (${unauthorized[1].status}: ${unauthorized[1].message})`));
    } else {
      replace(banner, el("strong", {}, "Some sections could not be refreshed: "),
        errors.map(([name, e]) => el("span", { class: "detail" }, `${name}: ${e.message}; `)));
    }
    banner.hidden = false;
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = state.paused ? null : setTimeout(tick, POLL_MS);
  }

  async function tick() {
    try {
      await refresh();
    } finally {
      schedule();
    }
  }

  // --- sections -----------------------------------------------------------------------------------------------

  const DRAW = {
    health: drawHealth,
    predictions: drawPredictions,
    journal: drawJournal,
    unmatched: drawUnmatched,
    generic: (data) => drawOptional("generic", data),
    faults: drawFaults,
    outcomes: drawOutcomes,
    behaviour: (data) => drawOptional("behaviour", data),
    webhooks: drawWebhooks,
  };

  function draw(name, data) {
    const serialized = JSON.stringify(data);
    if (state.rendered.get(name) === serialized) return;
    state.rendered.set(name, serialized);
    DRAW[name](data);
  }

  function count(id, n, total) {
    $(`${id}-count`).textContent = total !== undefined && total !== n ? `${n} of ${total}` : String(n);
  }

  function drawHealth(data) {
    const parts = [badge(data && data.ok ? "ok" : "not ok", data && data.ok ? "ok" : "bad")];
    if (data && typeof data.models === "number") parts.push(` ${data.models} models`);
    if (data && typeof data.now === "number") parts.push(` · fake clock ${clockTime(data.now)}`);
    for (const [name, value] of Object.entries(data || {})) {
      if (!["ok", "models", "now"].includes(name) && (typeof value !== "object" || value === null)) {
        parts.push(` · ${name} ${value}`);
      }
    }
    replace($("health"), parts);
  }

  function groupBy(items, keyOf) {
    const groups = new Map();
    for (const item of items) {
      const key = keyOf(item);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(item);
    }
    return groups;
  }

  function drawPredictions(list) {
    const body = $("predictions-body");
    list = Array.isArray(list) ? list : [];
    count("predictions", list.length);
    const used = new Set();
    if (!list.length) {
      replace(body, empty("No predictions. Submit one to /api/v3/<model> and it appears here."));
      forgetUnusedThumbs(used);
      return;
    }
    const reported = list.some((p) => "tenant" in p);
    // Newest first, and only so many: a long-running team mock may hold thousands.
    const shown = [...list].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))
      .slice(0, PREDICTION_CARDS);
    if (shown.length < list.length) count("predictions", shown.length, list.length);
    const groups = groupBy(shown, (p) => (reported ? p.tenant ?? null : "?"));
    const sections = [];
    for (const [tenant, items] of groups) {
      const heading = reported
        ? el("h3", { class: "tenant-heading" }, "tenant ", tenantChip(tenant), ` · ${items.length}`)
        : el("h3", { class: "tenant-heading" }, `all tenants · ${items.length} `,
          el("span", { class: "muted" }, "(this server does not report each prediction's tenant)"));
      sections.push(el("div", { class: "tenant-group" }, heading,
        el("div", { class: "cards" }, items.map((p) => predictionCard(p, used)))));
    }
    replace(body, sections);
    forgetUnusedThumbs(used);
  }

  function predictionCard(p, used) {
    const failed = p.status && TERMINAL.has(p.status) && p.status !== "completed";
    const head = el("div", { class: "card-head" },
      statusBadge(p.status),
      el("span", { class: "model" }, p.model || "?"),
      el("code", { class: "pid", title: "prediction id" }, p.id || ""));
    const facts = el("div", { class: "facts" },
      `created ${isoTime(p.created_at)} · ${p.polls ?? 0} poll${p.polls === 1 ? "" : "s"}`,
      p.seed !== undefined ? ` · seed ${p.seed}` : "",
      p.executionTime ? ` · ${p.executionTime} ms` : "");
    const parts = [head, facts];
    if (failed || p.code !== undefined || p.error) {
      parts.push(el("div", { class: "error-line" },
        p.code !== undefined ? badge(`code ${p.code}`, "bad") : null, " ", p.error || ""));
    }
    parts.push(timeline(p));
    const outputs = Array.isArray(p.outputs) ? p.outputs : [];
    if (outputs.length) {
      parts.push(el("div", { class: "images outputs" }, el("span", { class: "label" }, "outputs"),
        outputs.map((o, i) => thumbnail(o, `output ${i + 1} of ${p.id}`, used))));
    }
    const inputs = inputImages(p.input);
    if (inputs.length) {
      parts.push(el("div", { class: "images inputs" }, el("span", { class: "label" }, "input images"),
        inputs.map(([field, value], i) => thumbnail(value, `input ${field} ${i + 1} of ${p.id}`, used))));
    }
    if (p.input && typeof p.input.prompt === "string") {
      parts.push(el("blockquote", { class: "prompt" }, short(p.input.prompt, 600)));
    }
    const notes = Array.isArray(p.notes) ? p.notes : [];
    if (notes.length) parts.push(el("ul", { class: "notes" }, notes.map((n) => el("li", {}, n))));
    if (p.webhook) parts.push(el("div", { class: "facts" }, "webhook → ", el("code", {}, p.webhook)));
    if (p.outcome && Object.keys(p.outcome).length) {
      parts.push(el("div", { class: "facts" }, "outcome ", el("code", {}, JSON.stringify(p.outcome))));
    }
    parts.push(details("input", `input:${p.id}`, pre(p.input ?? {})));
    return el("article", { class: `card ${failed ? "failed" : ""}`.trim(), dataset: { id: p.id || "", status: p.status || "" } },
      parts);
  }

  function inputImages(input) {
    const found = [];
    if (!input || typeof input !== "object") return found;
    for (const [field, value] of Object.entries(input)) {
      const values = Array.isArray(value) ? value : [value];
      for (const v of values) {
        if (typeof v !== "string") continue;
        if (/image|mask/i.test(field) || /^data:image\//i.test(v)) {
          if (/^(data:image\/|https?:\/\/|\/)/i.test(v)) found.push([field, v]);
        }
      }
    }
    return found;
  }

  function timeline(p) {
    const steps = [el("li", {}, badge("submitted", "info"), el("span", { class: "at" }, isoTime(p.created_at)))];
    const log = Array.isArray(p.poll_log) ? p.poll_log : [];
    let previous = null;
    for (const entry of log) {
      const gap = previous !== null && typeof entry.time === "number" ? ` +${(entry.time - previous).toFixed(2)}s` : "";
      steps.push(el("li", {}, statusBadge(entry.status), el("span", { class: "at" }, `${clockTime(entry.time)}${gap}`)));
      previous = typeof entry.time === "number" ? entry.time : previous;
    }
    if (!log.length) steps.push(el("li", { class: "muted" }, "not polled yet"));
    return el("ol", { class: "timeline", "aria-label": "status timeline" }, steps);
  }

  function headerList(headers) {
    const shown = Object.entries(headers || {}).filter(([name]) => !SECRET_HEADERS.has(name.toLowerCase()));
    return el("dl", { class: "headers" }, shown.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  }

  function queryText(query) {
    if (!query || (typeof query === "object" && !Object.keys(query).length)) return "";
    if (typeof query === "string") return `?${query}`;
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      for (const v of Array.isArray(value) ? value : [value]) params.append(name, v);
    }
    return `?${params.toString()}`;
  }

  function journalRows(entries) {
    return entries.map((e) => {
      const row = el("tr", { dataset: { seq: e.seq ?? "", status: e.status ?? "", method: e.method || "" } },
        el("td", { class: "num" }, e.seq ?? ""),
        el("td", {}, clockTime(e.time)),
        el("td", {}, e.kind || ""),
        el("td", {}, e.method || ""),
        el("td", { class: "path" }, el("code", {}, `${e.path || ""}${queryText(e.query)}`)),
        el("td", {}, httpBadge(e.status)),
        el("td", { class: "num" }, typeof e.latency_ms === "number" ? e.latency_ms.toFixed(1) : ""),
        el("td", {}, tenantChip(e.tenant)),
        el("td", { class: "note" }, e.note || ""),
        el("td", {}, details("show", `journal:${e.seq}`, headerList(e.headers),
          e.body === null || e.body === undefined ? empty("no body") : pre(e.body))));
      return row;
    });
  }

  const JOURNAL_HEADERS = ["#", "time", "kind", "method", "path", "status", "ms", "tenant", "note", "request"];

  function drawJournal(list) {
    list = Array.isArray(list) ? list : [];
    list.forEach((e) => tenantLabel(e.tenant)); // hidden keys numbered in the order they first called
    const newest = list.slice(-JOURNAL_ROWS).reverse();
    count("journal", newest.length, list.length);
    const active = FILTERS.filter((name) => state.filters[name]);
    const caption = active.length ? `filtered by ${active.map((n) => `${n}=${state.filters[n]}`).join(", ")}` : "";
    replace($("journal-body"),
      caption ? el("p", { class: "muted filter-caption" }, caption) : null,
      newest.length
        ? table(JOURNAL_HEADERS, journalRows(newest), { class: "journal", id: "journal-table" })
        : empty(active.length ? "No request matches these filters." : "No requests recorded yet."));
  }

  function drawUnmatched(list) {
    list = Array.isArray(list) ? list : [];
    count("unmatched", list.length);
    replace($("unmatched-body"), list.length
      ? table(JOURNAL_HEADERS, journalRows(list.slice(-JOURNAL_ROWS).reverse()), { class: "journal", id: "unmatched-table" })
      : empty("No unmatched requests."));
  }

  function drawFaults(list) {
    list = Array.isArray(list) ? list : [];
    count("faults", list.length);
    const rows = list.map((f) => el("tr", { dataset: { id: f.id ?? "" } },
      el("td", { class: "num" }, f.id ?? ""),
      el("td", {}, badge(f.action || "?", "warn")),
      el("td", {}, f.method || "any"),
      el("td", { class: "path" }, el("code", {}, f.path || "*")),
      el("td", {}, f.status ?? ""),
      el("td", {}, f.retry_after ?? ""),
      el("td", {}, f.latency === null || f.latency === undefined ? "" : short(f.latency, 80)),
      el("td", {}, tenantChip(f.tenant)),
      el("td", {}, f.times === null ? "always" : `${f.remaining ?? "?"} of ${f.times ?? "?"} left`),
      el("td", { class: "num" }, f.hits ?? ""),
      el("td", { class: "num" }, f.probability ?? ""),
      el("td", {}, f.message || "")));
    replace($("faults-body"), rows.length
      ? table(["id", "action", "method", "path", "status", "retry after", "latency", "tenant", "times", "hits", "p",
        "message"], rows, { id: "faults-table" })
      : empty("No active faults."));
  }

  function drawOutcomes(list) {
    list = Array.isArray(list) ? list : [];
    count("outcomes", list.length);
    const rows = list.map((r) => {
      const outcome = r.outcome || {};
      return el("tr", {},
        el("td", {}, statusBadge(outcome.status || "completed")),
        el("td", {}, outcome.code !== undefined ? badge(`code ${outcome.code}`, "bad") : ""),
        el("td", { class: "path" }, el("code", {}, short(
          Object.fromEntries(Object.entries(outcome).filter(([k]) => k !== "status" && k !== "code")), 160))),
        el("td", {}, r.model || "any model"),
        el("td", {}, r.prompt_contains ? el("code", {}, r.prompt_contains) : "any prompt"),
        el("td", {}, tenantChip(r.tenant)),
        el("td", {}, r.times === null ? `every match (${r.used ?? 0} so far)` : `${r.used ?? 0} of ${r.times} used`));
    });
    replace($("outcomes-body"), rows.length
      ? table(["status", "code", "more", "model", "prompt contains", "tenant", "times"], rows, { id: "outcomes-table" })
      : empty("No outcome rules queued: every prediction completes normally."));
  }

  // Sections a server may add later (generically served models, behaviour): drawn from whatever shape they have.
  function drawOptional(name, data) {
    const available = data !== null && data !== undefined;
    $(name).hidden = !available;
    $(`${name}-link`).hidden = !available;
    if (!available) return;
    const items = Array.isArray(data) ? data : listInside(data);
    const counter = document.getElementById(`${name}-count`);
    if (counter) counter.textContent = items ? String(items.length) : "";
    replace($(`${name}-body`), generic(items ?? data));
  }

  function listInside(data) {
    if (!data || typeof data !== "object") return null;
    const lists = Object.values(data).filter(Array.isArray);
    return lists.length === 1 ? lists[0] : null;
  }

  function generic(data) {
    if (Array.isArray(data)) {
      if (!data.length) return empty("Nothing yet.");
      if (data.every((item) => item && typeof item === "object" && !Array.isArray(item))) {
        const keys = [...new Set(data.flatMap((item) => Object.keys(item)))];
        return table(keys, data.map((item) => el("tr", {}, keys.map((k) => el("td", {}, cell(k, item[k]))))));
      }
      return el("ul", {}, data.map((item) => el("li", {}, cell("", item))));
    }
    if (data && typeof data === "object") {
      return el("dl", { class: "headers" }, Object.entries(data).map(([k, v]) => [el("dt", {}, k), el("dd", {}, cell(k, v))]));
    }
    return el("p", {}, String(data));
  }

  function cell(key, value) {
    if (key === "tenant") return tenantChip(value);
    if (value === null || value === undefined) return "";
    return typeof value === "object" ? short(value, 200) : String(value);
  }

  function signature(d) {
    if (d.signature === null || d.signature === undefined) return badge("not sent", "bad");
    if (d.bad_signature === true || /bad signature/i.test(d.note || "")) return badge("bad signature", "warn");
    return badge("signature ok", "ok");
  }

  function delivered(d) {
    return typeof d.status === "number" && d.status >= 200 && d.status < 300;
  }

  function drawWebhooks(list) {
    list = Array.isArray(list) ? list : [];
    count("webhooks", list.length);
    if (!list.length) {
      replace($("webhooks-body"), empty("No webhook deliveries. Submit with ?webhook=URL to get one."));
      return;
    }
    const events = groupBy(list, (d) => d.event_id ?? `${d.prediction_id}:${d.url}`);
    const blocks = [];
    for (const [eventId, attempts] of [...events].reverse()) {
      const failedAttempts = attempts.filter((d) => !delivered(d)).length;
      const ok = attempts.some(delivered);
      const first = attempts[0];
      const summary = ok
        ? badge(failedAttempts ? `delivered after ${failedAttempts} failed attempt${failedAttempts > 1 ? "s" : ""}`
          : "delivered", failedAttempts ? "warn" : "ok")
        : badge(`${failedAttempts} failed attempt${failedAttempts > 1 ? "s" : ""}`, "bad");
      const rows = attempts.map((d) => el("tr", { dataset: { attempt: d.attempt ?? "" } },
        el("td", { class: "num" }, d.attempt ?? ""),
        el("td", {}, clockTime(d.timestamp)),
        el("td", {}, httpBadge(d.status)),
        el("td", {}, signature(d)),
        el("td", { class: "num" }, typeof d.latency_ms === "number" ? d.latency_ms.toFixed(1) : ""),
        el("td", { class: "note" }, [d.error, d.note].filter(Boolean).join("; "))));
      blocks.push(el("div", { class: "delivery", dataset: { event: eventId } },
        el("div", { class: "card-head" }, summary, " ", statusBadge(first.prediction_status),
          el("code", { class: "pid" }, first.prediction_id || ""), " → ", el("code", {}, first.url || ""),
          el("span", { class: "muted" }, ` event ${eventId}`)),
        table(["attempt", "time", "HTTP", "signature", "ms", "error / note"], rows, { class: "attempts" })));
    }
    replace($("webhooks-body"), blocks);
  }

  // --- actions ------------------------------------------------------------------------------------------------

  function say(text, kind) {
    const message = $("message");
    message.className = `message ${kind || ""}`.trim();
    replace(message, text);
    message.hidden = false;
  }

  async function act(label, run) {
    try {
      const text = await run();
      say(text, "ok");
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        say(`${label}: control token required (${error.message})`, "bad");
      } else if (error.status === 404 || error.status === 405) {
        say(`${label}: this server's control API does not offer it (${error.message})`, "bad");
      } else {
        say(`${label} failed: ${error.message}`, "bad");
      }
    }
    await refresh();
  }

  function readFilters() {
    const form = $("journal-filters");
    const filters = {};
    for (const name of FILTERS) {
      const value = String(form.elements[name].value || "").trim();
      if (value) filters[name] = value;
    }
    return filters;
  }

  function applyFilters() {
    state.filters = readFilters();
    // Keep the filters in the address bar, so a reload or a shared link shows the same view (never the token).
    const params = new URLSearchParams(location.search);
    for (const name of FILTERS) {
      if (state.filters[name]) params.set(name, state.filters[name]);
      else params.delete(name);
    }
    const query = params.toString();
    history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
    state.rendered.delete("journal");
    refresh();
  }

  function setPaused(paused) {
    state.paused = paused;
    const button = $("pause");
    button.textContent = paused ? "Resume" : "Pause";
    button.setAttribute("aria-pressed", String(paused));
    document.body.classList.toggle("paused", paused);
    if (paused) {
      clearTimeout(state.timer);
      state.timer = null;
      $("updated").textContent = "paused";
    } else {
      tick();
    }
  }

  function showTokenState() {
    $("token-state").textContent = currentToken() ? "token set" : "";
  }

  function start() {
    // A token in the address bar moves to sessionStorage at once, so it is not left in history or screenshots.
    const params = new URLSearchParams(location.search);
    if (params.has("token")) {
      storeToken(params.get("token") || "");
      params.delete("token");
      const query = params.toString();
      history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
    }
    const form = $("journal-filters");
    for (const name of FILTERS) {
      if (params.get(name)) form.elements[name].value = params.get(name);
    }
    state.filters = readFilters();
    showTokenState();

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      applyFilters();
    });
    $("journal-clear").addEventListener("click", () => {
      form.reset();
      applyFilters();
    });
    for (const name of ["method", "kind"]) form.elements[name].addEventListener("change", applyFilters);

    $("pause").addEventListener("click", () => setPaused(!state.paused));
    $("refresh-now").addEventListener("click", () => refresh());
    $("reset").addEventListener("click", () => {
      if (!window.confirm("Reset the fake: forget every prediction, rule, fault, journal entry and delivery?")) return;
      act("reset", async () => {
        const data = await control("POST", "/reset", { body: {} });
        state.hiddenTenants.clear();
        return `Reset: ${data && data.predictions_removed !== undefined ? data.predictions_removed : "?"} prediction(s) removed.`;
      });
    });
    $("clock-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const seconds = Number($("clock-seconds").value);
      act("clock advance", async () => {
        const data = await control("POST", "/clock/advance", { body: { seconds } });
        const finished = data && Array.isArray(data.finished) ? data.finished.length : 0;
        return `Clock moved ${seconds} s to ${clockTime(data && data.now)}; ${finished} prediction(s) finished.`;
      });
    });
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      storeToken($("token").value.trim());
      $("token").value = "";
      showTokenState();
      refresh();
    });
    $("token-forget").addEventListener("click", () => {
      storeToken("");
      showTokenState();
      refresh();
    });
    tick();
  }

  start();
})();
