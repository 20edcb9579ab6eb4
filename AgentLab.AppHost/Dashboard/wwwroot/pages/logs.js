// Structured logs (OTLP): filters by resource, level, execution ID and text; a click shows a record's attributes.
import { h, getJson, withQuery, poll, statusLine, formatTime, resourceSelect, replaceHashQuery, attributeTable, colourClass } from '../lib.js';

const levels = ['trace', 'debug', 'information', 'warning', 'error', 'critical'];

export function render(main, { params }, signal) {
  const filters = { resource: params.resource || '', level: params.level || '', execution_id: params.execution_id || '', q: params.q || '' };
  const status = statusLine();
  const summary = h('span', { class: 'muted' });
  const tbody = h('tbody');
  const open = new Set(); // record ids whose attributes are shown; kept across refreshes

  const changed = () => { replaceHashQuery('logs', filters); last = ''; refresh(); };
  const text = (key, placeholder) => {
    const input = h('input', { type: 'search', name: key, placeholder, value: filters[key], 'aria-label': placeholder, data: { testid: `logs-${key.replace('_', '-')}` } });
    let timer = 0;
    input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { filters[key] = input.value.trim(); changed(); }, 300); });
    return input;
  };
  const level = h('select', { name: 'level', 'aria-label': 'Minimum level', data: { testid: 'logs-level' }, onchange: () => { filters.level = level.value; changed(); } },
    h('option', { value: '' }, 'Any level'), levels.map((l) => h('option', { value: l }, `${l}+`)));
  level.value = filters.level;

  main.append(
    h('h1', null, 'Structured logs'),
    h('div', { class: 'filters' },
      resourceSelect(filters.resource, signal, (value) => { filters.resource = value; changed(); }),
      level, text('execution_id', 'Execution ID'), text('q', 'Search text'),
      h('button', { type: 'button', onclick: () => { last = ''; refresh(); } }, 'Refresh'), summary),
    h('table', { class: 'grid logs', data: { testid: 'logs' } },
      h('thead', null, h('tr', null, ['Time', 'Resource', 'Level', 'Message', 'Trace'].map((t) => h('th', null, t)))),
      tbody),
    status);

  let last = '';
  const refresh = poll(signal, 3000, async () => {
    const body = await getJson(withQuery('/api/logs', { ...filters, limit: 200 }), signal);
    const json = JSON.stringify(body);
    if (json === last) return;
    last = json;
    const records = body?.records || [];
    summary.textContent = `${records.length} shown · ${body?.kept ?? 0} kept of ${body?.capacity ?? '?'}` + (body?.dropped ? ` · ${body.dropped} dropped` : '');
    tbody.replaceChildren(...records.flatMap(rows));
    if (!records.length) tbody.append(h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'No log records match (yet).')));
  }, status.show);

  function rows(record) {
    const key = String(record.id);
    const details = h('tr', { class: 'details', hidden: !open.has(key) }, h('td', { colspan: 5 }, detailsOf(record)));
    const row = h('tr', {
      class: `record level-${record.level}`, tabindex: '0',
      data: { 'record-id': record.id, level: record.level, resource: record.resource },
      onclick: (event) => { if (event.target.closest('a')) return; toggle(); },
      onkeydown: (event) => { if (event.key === 'Enter') toggle(); },
    },
    h('td', { class: 'nowrap' }, formatTime(record.time)),
    h('td', null, h('span', { class: `dot ${colourClass(record.resource)}` }), record.resource || ''),
    h('td', null, h('span', { class: `pill level-${record.level}` }, record.level || '')),
    h('td', { class: 'message', data: { testid: 'message' } }, record.message || ''),
    h('td', null, record.trace_id ? traceLink(record.trace_id, record.trace_id.slice(0, 8)) : ''));
    function toggle() {
      details.hidden = !details.hidden;
      if (details.hidden) open.delete(key); else open.add(key);
    }
    return [row, details];
  }
}

function detailsOf(record) {
  const facts = [
    ['Category', record.category], ['Time', record.time], ['Severity', record.severity_number],
    ['Execution ID', record.execution_id], ['Span ID', record.span_id],
  ].filter(([, v]) => v !== undefined && v !== null && v !== '');
  return h('div', { class: 'record-details', data: { testid: 'record-details' } },
    h('dl', { class: 'facts' }, facts.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, String(v))]),
      record.trace_id ? [h('dt', null, 'Trace'), h('dd', null, traceLink(record.trace_id, record.trace_id))] : null),
    attributeTable(record.attributes, (k) => k.startsWith('agentlab.')));
}

function traceLink(traceId, label) {
  return h('a', { href: `#/traces/${encodeURIComponent(traceId)}`, data: { testid: 'trace-link' } }, label);
}
