// Console logs: a resource's stdout/stderr, live (EventSource), with a search that filters the shown lines.
import { h, getJson, withQuery, statusLine, formatTime, resourceSelect, replaceHashQuery } from '../lib.js';

const maxLines = 5000; // kept in the page; the server keeps its own window

export function render(main, { id, params }, signal) {
  const status = statusLine();
  if (!id) {
    // No resource chosen: offer the first one, the picker lists the rest.
    main.append(h('h1', null, 'Console logs'), status);
    getJson('/api/resources', signal).then((list) => {
      if (list?.length) location.replace(`#/console/${encodeURIComponent(list[0].name)}`);
      else status.show(new Error('No resources.'));
    }).catch(status.show);
    return;
  }

  const name = id;
  const search = h('input', { type: 'search', placeholder: 'Filter lines', value: params.q || '', 'aria-label': 'Filter lines', data: { testid: 'console-search' } });
  const output = h('div', { class: 'console', data: { testid: 'console', resource: name }, tabindex: '0' });
  const count = h('span', { class: 'muted' });
  main.append(
    h('h1', null, 'Console logs'),
    h('div', { class: 'filters' },
      resourceSelect(name, signal, (value) => { location.hash = `#/console/${encodeURIComponent(value)}`; }, null),
      search, count),
    output, status);

  let lastSeq = 0;
  let shown = 0;
  const lines = []; // { seq, text, el }

  const matches = (text) => !search.value || text.toLowerCase().includes(search.value.toLowerCase());

  function add(line) {
    if (line.seq <= lastSeq) return; // the stream repeats what the first load already gave
    lastSeq = line.seq;
    const el = h('div', { class: line.is_error ? 'line err' : 'line', data: { seq: line.seq, error: line.is_error ? 'true' : null } },
      h('span', { class: 'time' }, formatTime(line.time)), line.text);
    el.hidden = !matches(line.text);
    if (!el.hidden) shown++;
    lines.push({ seq: line.seq, text: line.text, el });
    output.append(el);
    if (lines.length > maxLines) {
      const old = lines.shift();
      if (!old.el.hidden) shown--;
      old.el.remove();
    }
  }

  // Follow the tail unless the user scrolled up to read.
  function addAll(batch) {
    const atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 24;
    for (const line of batch) add(line);
    count.textContent = `${shown} of ${lines.length} lines`;
    if (atBottom) output.scrollTop = output.scrollHeight;
  }

  // Typing filters what is shown at once; the URL keeps the search so a reload asks the server for it.
  search.addEventListener('input', () => {
    shown = 0;
    for (const line of lines) { line.el.hidden = !matches(line.text); if (!line.el.hidden) shown++; }
    count.textContent = `${shown} of ${lines.length} lines`;
    replaceHashQuery(`console/${encodeURIComponent(name)}`, { q: search.value });
  });

  const base = `/api/resources/${encodeURIComponent(name)}/console`;
  getJson(withQuery(base, { q: params.q }), signal).then((body) => {
    addAll(body?.lines || []);
    output.scrollTop = output.scrollHeight;
    openStream();
  }).catch((error) => { if (!signal.aborted) { status.show(error); openStream(); } });

  function openStream() {
    if (signal.aborted) return;
    const source = new EventSource(withQuery(`${base}/stream`, { after: lastSeq }));
    signal.addEventListener('abort', () => source.close());
    source.addEventListener('line', (event) => {
      try { addAll([JSON.parse(event.data)]); } catch { /* a malformed event is skipped */ }
    });
    source.addEventListener('open', () => status.show(null));
    // EventSource reconnects by itself (sending Last-Event-ID); say so meanwhile.
    source.addEventListener('error', () => { if (!signal.aborted) status.show(new Error('Live tail disconnected; reconnecting…')); });
  }
}
