// The dashboard's router: one page at a time, chosen by the hash (#/resources, #/console/{name}, #/logs?...,
// #/traces?..., #/traces/{id}, #/metrics). Each page gets an AbortSignal that stops its timers, fetches and streams
// when the user leaves it.
import { h } from './lib.js';
import * as resources from './pages/resources.js';
import * as consoleLogs from './pages/console.js';
import * as logs from './pages/logs.js';
import * as traces from './pages/traces.js';
import * as traceView from './pages/trace-view.js';
import * as metrics from './pages/metrics.js';

const main = document.getElementById('page');
let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?', 2);
  const segments = path.split('/').filter(Boolean).map((s) => { try { return decodeURIComponent(s); } catch { return s; } });
  return { segments, params: Object.fromEntries(new URLSearchParams(query)) };
}

function route() {
  const { segments, params } = parseHash();
  const [page = 'resources', id] = segments;
  const table = {
    resources: () => resources.render,
    console: () => consoleLogs.render,
    logs: () => logs.render,
    traces: () => (id ? traceView.render : traces.render),
    metrics: () => metrics.render,
  };
  const render = (table[page] || table.resources)();

  current?.abort();
  current = new AbortController();
  main.replaceChildren();
  main.dataset.page = table[page] ? page : 'resources';
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', link.dataset.page === main.dataset.page);
  }
  try {
    render(main, { id, params }, current.signal);
  } catch (error) {
    main.append(h('p', { class: 'status error' }, `This page failed: ${error.message}`));
  }
}

// The header's search: an execution ID leads to its traces.
document.querySelector('form.search').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = event.target.elements.execution_id;
  const id = input.value.trim();
  if (id) location.hash = `#/traces?execution_id=${encodeURIComponent(id)}`;
});

window.addEventListener('hashchange', route);
route();
