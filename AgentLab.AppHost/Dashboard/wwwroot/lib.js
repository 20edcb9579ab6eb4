// Shared helpers for the dashboard's pages. Every server-supplied string reaches the DOM as a text node
// (h() never parses HTML), so log lines and attributes that carry markup stay text.

/** Creates an element: h('td', { class: 'x', data: { resource: 'backend' } }, 'text', childNode, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements (charts). */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'data') {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) el.setAttribute(`data-${k}`, String(v));
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A failed API call: the ProblemDetails' title/detail when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code;
  }
}

/** GET JSON from the dashboard's API. */
export async function getJson(path, signal) {
  const response = await fetch(path, { signal, cache: 'no-store', headers: { Accept: 'application/json' } });
  return readJson(response);
}

/** POST an action. The header is the API's CSRF guard: a cross-site form cannot set it. */
export async function post(path) {
  const response = await fetch(path, { method: 'POST', headers: { 'X-AgentLab-Dashboard': '1', Accept: 'application/json' } });
  return readJson(response);
}

async function readJson(response) {
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON: an HTML error page or a proxy's text */ }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** Builds "path?a=1&b=2" leaving out empty values. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, v);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** Rewrites the current hash's query (filters) without re-rendering the page. */
export function replaceHashQuery(route, params) {
  history.replaceState(null, '', withQuery(`#/${route}`, params));
}

/**
 * Runs load() now and every `ms` until the page's signal aborts. Loads never overlap; a failed load shows its error
 * through onError and polling goes on (the AppHost may be restarting a resource).
 */
export function poll(signal, ms, load, onError) {
  let timer = 0;
  let running = false;
  const tick = async () => {
    if (signal.aborted || running) return;
    running = true;
    try { await load(); onError?.(null); } catch (error) { if (!signal.aborted) onError?.(error); } finally { running = false; }
    if (!signal.aborted) timer = setTimeout(tick, ms);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  tick();
  return () => { clearTimeout(timer); tick(); };
}

/** A status line for errors and notes ("no data yet"). */
export function statusLine() {
  const el = h('p', { class: 'status', role: 'status', data: { testid: 'status' } });
  el.show = (error) => {
    el.textContent = error ? (error.message || String(error)) : '';
    el.classList.toggle('error', !!error);
  };
  return el;
}

/** The same resource gets the same colour on every page (classes c0..c7, defined in app.css). */
export function colourClass(resource) {
  let hash = 0;
  for (const ch of String(resource || '')) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `c${hash % 8}`;
}

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

export function formatDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${d.toLocaleDateString()} ${formatTime(iso)}`;
}

export function formatMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms === 0) return '0 ms';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatUptime(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '';
  const s = Math.floor(seconds);
  const parts = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  return parts[0] ? `${parts[0]}h ${parts[1]}m ${parts[2]}s` : parts[1] ? `${parts[1]}m ${parts[2]}s` : `${parts[2]}s`;
}

/** Attribute values can be strings, numbers, booleans or arrays of those. */
export function formatValue(value) {
  if (Array.isArray(value)) return `[${value.map(formatValue).join(', ')}]`;
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** A key/value table of attributes; keys matching `highlight` get the class "highlight". */
export function attributeTable(attributes, highlight) {
  const entries = Object.entries(attributes || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h('p', { class: 'muted' }, 'No attributes.');
  return h('table', { class: 'attributes', data: { testid: 'attributes' } },
    h('tbody', null, entries.map(([key, value]) =>
      h('tr', { class: highlight && highlight(key) ? 'highlight' : null, data: { key } },
        h('th', { scope: 'row' }, key), h('td', null, formatValue(value))))));
}

/** A <select> of resource names ('' = all), filled from /api/resources. */
export function resourceSelect(selected, signal, onChange, allLabel = 'All resources') {
  const select = h('select', { name: 'resource', 'aria-label': 'Resource', data: { testid: 'resource-filter' }, onchange: () => onChange(select.value) },
    allLabel === null ? null : h('option', { value: '' }, allLabel));
  if (selected) select.append(h('option', { value: selected }, selected));
  select.value = selected || '';
  getJson('/api/resources', signal).then((resources) => {
    for (const r of resources || []) {
      if (r.name !== selected) select.append(h('option', { value: r.name }, r.name));
    }
    select.value = selected || '';
  }).catch(() => { /* the page's own load shows errors */ });
  return select;
}
