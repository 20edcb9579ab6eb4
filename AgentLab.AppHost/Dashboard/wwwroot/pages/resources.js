// Resources: every resource of the lab with its state, endpoint, health, restarts and uptime, and its actions.
import { h, getJson, post, poll, statusLine, formatUptime, colourClass } from '../lib.js';

const actionLabels = { stop: 'Stop', start: 'Start', restart: 'Restart' };

export function render(main, _route, signal) {
  const status = statusLine();
  const tbody = h('tbody');
  main.append(
    h('h1', null, 'Resources'),
    h('table', { class: 'grid', data: { testid: 'resources' } },
      h('thead', null, h('tr', null, ['Name', 'Kind', 'State', 'Endpoint', 'Health', 'Restarts', 'Uptime', 'Actions'].map((t) => h('th', null, t)))),
      tbody),
    status);

  // Uptime ticks between refreshes: each cell knows its uptime at fetch time.
  let uptimes = [];
  const tickUptimes = () => {
    const now = performance.now();
    for (const { cell, seconds, at } of uptimes) cell.textContent = formatUptime(seconds + (now - at) / 1000);
  };
  const ticker = setInterval(tickUptimes, 1000);
  signal.addEventListener('abort', () => clearInterval(ticker));

  let last = '';
  const refresh = poll(signal, 2000, async () => {
    const list = await getJson('/api/resources', signal);
    const text = JSON.stringify(list);
    if (text === last) return; // unchanged: keep the rows (and the button under the mouse)
    last = text;
    const at = performance.now();
    uptimes = [];
    tbody.replaceChildren(...(list || []).map((r) => row(r, at)));
    if (!list?.length) tbody.append(h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No resources.')));
    tickUptimes();
  }, status.show);

  function row(r, at) {
    const uptime = h('td', { class: 'num', data: { testid: 'uptime' } });
    if (typeof r.uptime_seconds === 'number') uptimes.push({ cell: uptime, seconds: r.uptime_seconds, at });
    const title = r.message || (r.process_id ? `process ${r.process_id}` : null);
    return h('tr', { data: { resource: r.name, state: r.state, health: r.health }, title },
      h('td', null, h('span', { class: `dot ${colourClass(r.name)}` }), h('a', { href: `#/console/${encodeURIComponent(r.name)}`, title: 'Console logs' }, r.name)),
      h('td', { class: 'muted' }, r.kind),
      h('td', null, h('span', { class: `pill state-${r.state}`, data: { testid: 'state' } }, r.state)),
      h('td', null, endpoint(r.endpoint)),
      h('td', null, h('span', { class: `pill health-${r.health}`, data: { testid: 'health' } }, r.health)),
      h('td', { class: 'num' }, String(r.restarts ?? 0)),
      uptime,
      h('td', { class: 'actions' }, (r.actions || []).map((action) =>
        h('button', { type: 'button', data: { action }, onclick: (e) => act(e.currentTarget, r.name, action) }, actionLabels[action] || action))));
  }

  async function act(button, name, action) {
    button.disabled = true;
    try {
      await post(`/api/resources/${encodeURIComponent(name)}/${encodeURIComponent(action)}`);
      status.show(null);
    } catch (error) {
      status.show(new Error(`${actionLabels[action] || action} ${name}: ${error.message}`));
    } finally {
      last = '';
      refresh();
    }
  }
}

/** Links only for http(s): a tcp:// endpoint (a database) is shown as text. */
function endpoint(value) {
  if (!value) return h('span', { class: 'muted' }, '—');
  if (/^https?:\/\//i.test(value)) return h('a', { href: value, target: '_blank', rel: 'noopener noreferrer' }, value);
  return h('code', null, value);
}
