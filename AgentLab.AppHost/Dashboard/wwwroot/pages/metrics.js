// Metrics: one SVG line chart per chart the API computes (request rate, latency, tokens/s), and the list of
// every instrument received.
import { h, svg, getJson, withQuery, poll, statusLine, resourceSelect, replaceHashQuery, formatTime } from '../lib.js';

const width = 640, height = 220;
const pad = { left: 56, right: 12, top: 12, bottom: 28 };

export function render(main, { params }, signal) {
  const filters = { resource: params.resource || '', minutes: params.minutes || '15' };
  const status = statusLine();
  const charts = h('div', { class: 'charts', data: { testid: 'charts' } });
  const instruments = h('div', { class: 'instruments' });
  const changed = () => { replaceHashQuery('metrics', filters); last = ''; refresh(); };
  const minutes = h('select', { name: 'minutes', 'aria-label': 'Window', onchange: () => { filters.minutes = minutes.value; changed(); } },
    ['5', '15', '60'].map((m) => h('option', { value: m }, `last ${m} min`)));
  minutes.value = filters.minutes;

  main.append(
    h('h1', null, 'Metrics'),
    h('div', { class: 'filters' }, resourceSelect(filters.resource, signal, (value) => { filters.resource = value; changed(); }), minutes),
    charts, instruments, status);

  let last = '';
  const refresh = poll(signal, 5000, async () => {
    const body = await getJson(withQuery('/api/metrics', filters), signal);
    const json = JSON.stringify(body);
    if (json === last) return;
    last = json;
    charts.replaceChildren(...(body?.charts || []).map(chart));
    if (!body?.charts?.length) charts.append(h('p', { class: 'muted' }, 'No data yet.'));
    const list = body?.instruments || [];
    instruments.replaceChildren(h('h2', null, 'Instruments received'), list.length
      ? h('table', { class: 'grid compact' },
        h('thead', null, h('tr', null, ['Resource', 'Name', 'Type', 'Unit', 'Points'].map((t) => h('th', null, t)))),
        h('tbody', null, list.map((i) => h('tr', null, h('td', null, i.resource), h('td', null, h('code', null, i.name)),
          h('td', null, i.type), h('td', null, i.unit || ''), h('td', { class: 'num' }, String(i.points ?? ''))))))
      : h('p', { class: 'muted' }, 'No metrics received yet.'));
  }, status.show);
}

function chart(c) {
  const series = (c.series || []).map((s, i) => ({ ...s, index: i, points: (s.points || []).map((p) => ({ t: Date.parse(p.time), v: Number(p.value) })).filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v)) }));
  const all = series.flatMap((s) => s.points);
  const card = h('figure', { class: 'chart', data: { chart: c.id } }, h('figcaption', null, c.title, c.unit ? h('span', { class: 'muted' }, ` (${c.unit})`) : null));
  if (!all.length) {
    card.append(h('p', { class: 'muted empty', data: { testid: 'no-data' } }, 'No data yet.'));
    return card;
  }

  let t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t));
  if (t1 === t0) { t0 -= 30000; t1 += 30000; }
  const yTicks = niceTicks(Math.max(...all.map((p) => p.v), 0));
  const yMax = yTicks[yTicks.length - 1];
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / yMax) * (height - pad.top - pad.bottom);

  const plot = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'plot', role: 'img', 'aria-label': c.title });
  for (const v of yTicks) {
    plot.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid-line' }),
      svg('text', { x: pad.left - 6, y: y(v) + 4, class: 'tick-label', 'text-anchor': 'end' }, formatNumber(v)));
  }
  for (let i = 0; i <= 3; i++) {
    const t = t0 + ((t1 - t0) * i) / 3;
    plot.append(svg('text', { x: x(t), y: height - 8, class: 'tick-label', 'text-anchor': i === 0 ? 'start' : i === 3 ? 'end' : 'middle' }, formatTime(new Date(t).toISOString()).slice(0, 8)));
  }
  plot.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0), class: 'axis-line' }),
    svg('line', { x1: pad.left, x2: pad.left, y1: pad.top, y2: y(0), class: 'axis-line' }));
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
    plot.append(svg('path', { d, class: `series s${s.index % 8}` }, svg('title', null, s.name)));
    if (s.points.length === 1) plot.append(svg('circle', { cx: x(s.points[0].t), cy: y(s.points[0].v), r: 3, class: `point s${s.index % 8}` }));
  }
  card.append(plot, h('ul', { class: 'legend' }, series.map((s) =>
    h('li', null, h('span', { class: `swatch s${s.index % 8}` }), s.name, s.points.length ? null : h('span', { class: 'muted' }, ' (no data yet)')))));
  return card;
}

/** 0 and three or four round steps up to at least max. */
function niceTicks(max) {
  if (!(max > 0)) return [0, 1];
  const raw = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function formatNumber(v) {
  if (v >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return Number(v.toPrecision(3)).toString();
}
