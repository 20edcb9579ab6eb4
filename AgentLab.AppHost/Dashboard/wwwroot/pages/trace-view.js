// One trace: the span tree on a timeline (rows in the API's depth-first order, indented by depth, bars placed by
// offset and duration against the whole trace), and the selected span's attributes and events. Model calls
// (is_gen_ai) are marked and their gen_ai.* attributes highlighted; a graph node's span (agentlab.node, no gen_ai.*)
// gets a node badge, so an orchestrator run reads node by node.
import { h, getJson, poll, statusLine, formatDateTime, formatMs, attributeTable, formatValue, colourClass, ApiError } from '../lib.js';

const isGenAi = (key) => key.startsWith('gen_ai.');
const nodeOf = (span) => (span.attributes || {})['agentlab.node'];

export function render(main, { id }, signal) {
  const status = statusLine();
  const head = h('div', { class: 'trace-head' });
  const timeline = h('div', { class: 'timeline', data: { testid: 'timeline' } });
  const details = h('section', { class: 'span-details', data: { testid: 'span-details' } },
    h('p', { class: 'muted' }, 'Click a span to see its attributes and events.'));
  main.append(h('p', null, h('a', { href: '#/traces' }, '← Traces')), head, timeline, details, status);

  let selected = null;
  let last = '';
  // Spans of the other services arrive a moment later (each exports on its own schedule): keep refreshing.
  poll(signal, 3000, async () => {
    let trace;
    try {
      trace = await getJson(`/api/traces/${encodeURIComponent(id)}`, signal);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        head.replaceChildren(h('h1', null, 'Trace not found'), h('p', { class: 'muted' }, `No span of trace ${id} is kept (yet).`));
        return;
      }
      throw error;
    }
    const json = JSON.stringify(trace);
    if (json === last) return;
    last = json;
    draw(trace);
  }, status.show);

  function draw(trace) {
    const spans = trace.spans || [];
    const total = trace.duration_ms > 0 ? trace.duration_ms : Math.max(1, ...spans.map((s) => (s.offset_ms || 0) + (s.duration_ms || 0)));
    const root = spans.find((s) => (s.depth ?? 0) === 0) || spans[0];
    head.replaceChildren(
      h('h1', null, root ? root.name : 'Trace'),
      h('dl', { class: 'facts inline' },
        h('dt', null, 'Trace'), h('dd', null, h('code', null, trace.trace_id)),
        h('dt', null, 'Start'), h('dd', null, formatDateTime(trace.start)),
        h('dt', null, 'Duration'), h('dd', null, formatMs(trace.duration_ms)),
        h('dt', null, 'Spans'), h('dd', null, String(spans.length)),
        h('dt', null, 'Resources'), h('dd', null, (trace.resources || []).map((r) => h('span', { class: `chip ${colourClass(r)}` }, r)))));

    const rows = spans.map((span) => spanRow(span, total));
    timeline.replaceChildren(axis(total), ...rows);
    const again = selected && spans.find((s) => s.span_id === selected);
    if (again) select(again); else if (!selected) details.replaceChildren(h('p', { class: 'muted' }, 'Click a span to see its attributes and events.'));
  }

  function spanRow(span, total) {
    const depth = span.depth ?? 0;
    const left = Math.min(100, Math.max(0, ((span.offset_ms || 0) / total) * 100));
    const width = Math.min(100 - left, Math.max(0.3, ((span.duration_ms || 0) / total) * 100));
    const bar = h('div', { class: `bar ${colourClass(span.resource)}${span.status === 'error' ? ' error' : ''}` });
    bar.style.left = `${left}%`;
    bar.style.width = `${width}%`;
    const label = h('div', { class: 'label' },
      h('span', { class: `dot ${colourClass(span.resource)}` }),
      h('span', { class: 'name' }, span.name),
      span.is_gen_ai ? h('span', { class: 'badge gen-ai', title: 'Model call (gen_ai.* attributes)' }, 'AI') : null,
      !span.is_gen_ai && nodeOf(span) ? h('span', { class: 'badge node', title: 'A node of the agent graph (agentlab.node)' }, 'node') : null,
      span.status === 'error' ? h('span', { class: 'badge error' }, 'error') : null,
      h('span', { class: 'muted small' }, span.resource),
      hint(span) ? h('span', { class: 'hint small', title: hint(span) }, hint(span)) : null);
    label.style.paddingLeft = `${0.5 + depth * 1.1}rem`;
    // The duration goes right of the bar, left of a late one, or inside one that spans (nearly) everything.
    const duration = h('span', { class: 'duration' }, formatMs(span.duration_ms));
    if (left + width <= 85) duration.style.left = `calc(${left + width}% + 6px)`;
    else if (left >= 15) duration.style.right = `calc(${100 - left}% + 6px)`;
    else { duration.classList.add('inside'); duration.style.right = `calc(${100 - left - width}% + 6px)`; }
    const track = h('div', { class: 'track' }, bar, duration);
    const summary = span.is_gen_ai ? genAiSummary(span.attributes || {}) : null;
    const node = !span.is_gen_ai && nodeOf(span) ? ' node' : '';
    const row = h('div', {
      class: `span-row${span.is_gen_ai ? ' gen-ai' : ''}${node}${span.span_id === selected ? ' selected' : ''}`,
      role: 'button', tabindex: '0',
      data: { 'span-id': span.span_id, 'parent-span-id': span.parent_span_id, resource: span.resource, depth, 'gen-ai': span.is_gen_ai ? 'true' : null, status: span.status },
      onclick: () => select(span),
      onkeydown: (event) => { if (event.key === 'Enter') select(span); },
    }, label, track);
    if (summary) label.append(h('span', { class: 'gen-ai-summary', data: { testid: 'gen-ai-summary' } }, summary));
    return row;
  }

  function select(span) {
    selected = span.span_id;
    for (const row of timeline.querySelectorAll('.span-row')) row.classList.toggle('selected', row.dataset.spanId === selected);
    const facts = [
      ['Name', span.name], ['Resource', span.resource], ['Scope', span.scope], ['Kind', span.kind],
      ['Status', span.status_message ? `${span.status}: ${span.status_message}` : span.status],
      ['Start', formatDateTime(span.start)], ['Offset', formatMs(span.offset_ms)], ['Duration', formatMs(span.duration_ms)],
      ['Span ID', span.span_id], ['Parent', span.parent_span_id],
    ].filter(([, v]) => v !== undefined && v !== null && v !== '');
    details.replaceChildren(
      h('h2', null, span.name, span.is_gen_ai ? h('span', { class: 'badge gen-ai' }, 'model call') : null),
      h('dl', { class: 'facts' }, facts.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, String(v))])),
      h('h3', null, 'Attributes'),
      attributeTable(span.attributes, span.is_gen_ai ? isGenAi : null),
      h('h3', null, 'Events'),
      (span.events || []).length
        ? h('ul', { class: 'events' }, span.events.map((e) => h('li', null,
          h('strong', null, e.name), ' ', h('span', { class: 'muted' }, formatDateTime(e.time)),
          Object.keys(e.attributes || {}).length ? attributeTable(e.attributes) : null)))
        : h('p', { class: 'muted' }, 'No events.'));
  }
}

/** What a bare span name ("GET", "postgresql") leaves out: its route, URL or statement, shortened. */
function hint(span) {
  const a = span.attributes || {};
  const value = ['http.route', 'url.path', 'url.full', 'db.query.text', 'db.statement'].map((k) => a[k]).find((v) => typeof v === 'string' && v);
  if (!value || span.name.includes(value)) return '';
  return value.length > 80 ? `${value.slice(0, 79)}…` : value;
}

/** "executor · mistral:7b · 12 in / 40 out · stop" from the GenAI semantic conventions' attributes (and its node's name). */
function genAiSummary(a) {
  const model = a['gen_ai.response.model'] ?? a['gen_ai.request.model'];
  const input = a['gen_ai.usage.input_tokens'];
  const output = a['gen_ai.usage.output_tokens'];
  const finish = a['gen_ai.response.finish_reasons'];
  const parts = [];
  if (a['agentlab.node'] !== undefined) parts.push(formatValue(a['agentlab.node']));
  if (model !== undefined) parts.push(formatValue(model));
  if (input !== undefined || output !== undefined) parts.push(`${formatValue(input ?? '?')} in / ${formatValue(output ?? '?')} out`);
  if (finish !== undefined) parts.push(formatValue(finish));
  return parts.join(' · ');
}

/** The timeline's header: a few ticks across the trace's duration. */
function axis(total) {
  const ticks = h('div', { class: 'track ticks' });
  for (let i = 0; i <= 4; i++) {
    const tick = h('span', { class: 'tick' }, formatMs((total * i) / 4));
    tick.style.left = `${i * 25}%`;
    ticks.append(tick);
  }
  return h('div', { class: 'span-row axis' }, h('div', { class: 'label muted' }, 'Span'), ticks);
}
