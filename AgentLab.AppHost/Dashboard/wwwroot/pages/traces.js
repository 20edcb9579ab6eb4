// Traces: the newest traces, filtered by resource and execution ID (the header's search lands here).
import { h, getJson, withQuery, poll, statusLine, formatDateTime, formatMs, resourceSelect, replaceHashQuery, colourClass } from '../lib.js';

export function render(main, { params }, signal) {
  const filters = { resource: params.resource || '', execution_id: params.execution_id || '' };
  const status = statusLine();
  const summary = h('span', { class: 'muted' });
  const tbody = h('tbody');
  const changed = () => { replaceHashQuery('traces', filters); last = ''; refresh(); };

  const execution = h('input', { type: 'search', name: 'execution_id', placeholder: 'Execution ID', value: filters.execution_id, 'aria-label': 'Execution ID', data: { testid: 'traces-execution-id' } });
  let timer = 0;
  execution.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { filters.execution_id = execution.value.trim(); changed(); }, 300); });
  // The header's box shows what is being searched.
  const headerSearch = document.querySelector('[data-testid="execution-search"]');
  if (headerSearch && filters.execution_id) headerSearch.value = filters.execution_id;

  main.append(
    h('h1', null, filters.execution_id ? 'Traces of an execution' : 'Traces'),
    h('div', { class: 'filters' },
      resourceSelect(filters.resource, signal, (value) => { filters.resource = value; changed(); }),
      execution, h('button', { type: 'button', onclick: () => { last = ''; refresh(); } }, 'Refresh'), summary),
    h('table', { class: 'grid traces', data: { testid: 'traces' } },
      h('thead', null, h('tr', null, ['Name', 'Execution', 'Resources', 'Start', 'Duration', 'Model calls', 'Spans', 'Status'].map((t) => h('th', null, t)))),
      tbody),
    status);

  let last = '';
  const refresh = poll(signal, 3000, async () => {
    const body = await getJson(withQuery('/api/traces', { ...filters, limit: 100 }), signal);
    const json = JSON.stringify(body);
    if (json === last) return;
    last = json;
    const traces = body?.traces || [];
    summary.textContent = `${traces.length} shown · ${body?.kept ?? 0} kept of ${body?.capacity ?? '?'}` + (body?.dropped ? ` · ${body.dropped} dropped` : '');
    tbody.replaceChildren(...traces.map(row));
    if (!traces.length) {
      tbody.append(h('tr', null, h('td', { colspan: 8, class: 'muted' },
        filters.execution_id ? 'No trace carries this execution ID (yet): spans arrive a second or two after the work.' : 'No traces yet.')));
    }
  }, status.show);
}

function row(trace) {
  const href = `#/traces/${encodeURIComponent(trace.trace_id)}`;
  return h('tr', {
    class: `trace trace-${trace.status}`, tabindex: '0',
    data: { 'trace-id': trace.trace_id, status: trace.status },
    onclick: () => { location.hash = href; },
    onkeydown: (event) => { if (event.key === 'Enter') location.hash = href; },
  },
  h('td', null, h('a', { href, data: { testid: 'trace-link' } }, trace.name || trace.trace_id)),
  h('td', { data: { testid: 'trace-execution' } }, execution(trace)),
  h('td', null, (trace.resources || []).map((r) => h('span', { class: `chip ${colourClass(r)}` }, r))),
  h('td', { class: 'nowrap' }, formatDateTime(trace.start)),
  h('td', { class: 'num' }, formatMs(trace.duration_ms)),
  h('td', { class: 'num', data: { testid: 'trace-model-calls' } }, trace.model_calls ? String(trace.model_calls) : ''),
  h('td', { class: 'num' }, String(trace.span_count ?? '')),
  h('td', null, h('span', { class: `pill status-${trace.status}` }, trace.error_count ? `${trace.status} (${trace.error_count})` : trace.status)));
}

/**
 * "…bd3c4fa1 orchestrator": the execution's ID by its last characters (the whole one on hover), and its type. IDs are
 * UUIDv7, whose first characters are a timestamp that executions a second apart share.
 */
function execution(trace) {
  const ids = trace.execution_ids || [];
  if (!ids.length) return null;
  const shown = ids.map((id) => h('code', { title: id }, id.length > 12 ? `…${id.slice(-8)}` : id));
  const types = (trace.execution_types || []).map((t) => h('span', { class: 'muted small' }, ` ${t}`));
  return [...shown, ...types];
}
