// Events: the list (filters, polled) and one event (headers, body,
// per-destination attempt timeline, replay).

import { api, seg, qs } from './api.js';
import { h, badge, time, pretty, table, every, eventHref, flash, flashError } from './dom.js';

const POLL_MS = 3000;
// A settled event changes only when it is replayed (and replay() refreshes).
const SETTLED_POLL_MS = 15000;
const PAGE = 50;
const MOST = 500; // the admin API's largest page

// Kept while the tab lives, so coming back from an event keeps them.
const filters = { source: '', type: '', status: '', since: '' };

const TIMES = [['', 'any time'], ['15m', 'last 15 minutes'], ['1h', 'last hour'],
  ['24h', 'last 24 hours'], ['7d', 'last 7 days']];
const STATUSES = ['', 'pending', 'delivered', 'failed', 'unrouted'];

function select(name, options, value) {
  return h('select', { name, id: `f-${name}`, 'aria-label': name },
    options.map(([v, label]) => h('option', { value: v, selected: v === value, text: label })));
}

export function eventsPage() {
  const sources = select('source', [['', 'all sources']], filters.source);
  const type = h('input', { name: 'type', id: 'f-type', placeholder: 'type (glob: pull_request.*)', value: filters.type });
  const status = select('status', STATUSES.map((s) => [s, s || 'any status']), filters.status);
  const since = select('since', TIMES, filters.since);
  const body = h('tbody', {});
  const foot = h('span', { class: 'muted', id: 'events-foot' });
  const more = h('button', { type: 'button', id: 'events-more', class: 'small', text: 'Show older', hidden: true });
  let limit = PAGE;
  more.addEventListener('click', () => { limit = Math.min(limit + PAGE, MOST); refresh().catch(flashError); });
  const node = h('section', { class: 'events' },
    h('h1', { text: 'Events' }),
    h('form', { class: 'filters', id: 'event-filters' }, sources, type, status, since),
    h('table', { id: 'events' },
      h('thead', {}, h('tr', {}, ['Received', 'Event', 'Source', 'Type', 'Status', 'Destinations']
        .map((t) => h('th', { text: t })))),
      body),
    h('p', {}, foot, ' ', more));

  // Sources and pollers both send events.
  Promise.all([api('GET', '/admin/sources'), api('GET', '/admin/pollers')]).then(([s, p]) => {
    const ids = [...s.sources.map((x) => x.id), ...p.pollers.map((x) => x.id)].sort();
    for (const id of ids) sources.append(h('option', { value: id, selected: id === filters.source, text: id }));
  }).catch(flashError);

  let generation = 0;
  const refresh = async () => {
    const mine = ++generation;
    const q = qs({ source: filters.source, type: filters.type, status: filters.status, since: filters.since, limit });
    const page = await api('GET', `/admin/events${q}`);
    if (mine !== generation) return; // the filters changed meanwhile
    body.replaceChildren(...page.events.map(row));
    if (!page.events.length) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No events match.' })));
    foot.textContent = page.next_cursor ? `Newest ${page.events.length} shown.` : '';
    more.hidden = !page.next_cursor || limit >= MOST;
  };
  const onChange = () => {
    Object.assign(filters, { source: sources.value, type: type.value.trim(), status: status.value, since: since.value });
    limit = PAGE;
    refresh().catch(flashError);
  };
  for (const el of [sources, status, since]) el.addEventListener('change', onChange);
  let typing = null;
  type.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(onChange, 300); });
  node.querySelector('form').addEventListener('submit', (ev) => { ev.preventDefault(); onChange(); });

  const stop = every(POLL_MS, refresh);
  return { node, stop: () => { stop(); clearTimeout(typing); } };
}

function row(e) {
  const dests = (e.destinations || []).map((d) => h('span', { class: 'dest', dataset: { subscription: d.subscription, status: d.status } },
    h('span', { class: 'dest-name', text: d.subscription }), ' ', badge(d.status), ' ',
    h('span', { class: 'attempts', text: attempts(d.attempts) })));
  return h('tr', { dataset: { eventId: e.id, status: e.status } },
    h('td', { class: 'nowrap', text: time(e.received_at) }),
    h('td', {}, h('a', { href: eventHref(e.id), class: 'event-link', text: e.event_id }),
      e.replay_of ? h('span', { class: 'muted', text: ` replay of ${e.replay_of}` }) : null),
    h('td', { text: e.source }),
    h('td', { text: e.type }),
    h('td', {}, badge(e.status)),
    h('td', { class: 'dests' }, dests.length ? dests
      : h('span', { class: 'muted', text: e.status === 'pending' ? 'routing\u2026' : 'none' })));
}

const attempts = (n) => `${n} attempt${n === 1 ? '' : 's'}`;

export function eventPage(id) {
  const head = h('div', { class: 'event-head' });
  const meta = h('dl', { class: 'meta' });
  const dests = h('div', { class: 'destinations', id: 'destinations' });
  const headers = h('div', { id: 'headers' });
  const body = h('pre', { class: 'body', id: 'event-body' });
  const replayAll = h('button', { type: 'button', id: 'replay-all', text: 'Replay to all destinations' });
  const node = h('section', { class: 'event' },
    h('p', {}, h('a', { href: '#/events', text: '\u2190 Events' })),
    head, meta, h('div', { class: 'actions' }, replayAll),
    h('h2', { text: 'Destinations' }), dests,
    h('h2', { text: 'Headers' }), headers,
    h('h2', { text: 'Body' }), body);

  let shown = false;
  const refresh = async () => {
    let e;
    try {
      e = await api('GET', `/admin/events/${seg(id)}`);
    } catch (err) {
      if (err.status === 404) {
        head.replaceChildren(h('h1', { text: 'Event not found' }));
        return;
      }
      throw err;
    }
    head.replaceChildren(h('h1', {}, `${e.source} \u00b7 `, h('span', { id: 'event-id', text: e.event_id }), ' ', badge(e.status)));
    meta.replaceChildren(
      ...dt('Type', e.type), ...dt('Received', time(e.received_at)), ...dt('Kept until', time(e.expires_at)),
      ...dt('Content type', e.content_type || ''),
      ...(e.replay_of ? dt('Replay of', h('a', { href: eventHref(e.replay_of), text: e.replay_of })) : []),
      ...(e.replays.length ? dt('Replays', e.replays.map((r, i) => [i ? ', ' : '', h('a', { href: eventHref(r), text: r })])) : []));
    dests.replaceChildren(...(e.deliveries.length ? e.deliveries.map((d) => destination(e, d, again)) : [h('p', { class: 'muted', text: e.routed ? 'No destination took this event.' : 'Not routed yet.' })]));
    if (!shown) {
      // Headers and body never change: written once (and a selection in them survives polling).
      shown = true;
      headers.replaceChildren(table(['Name', 'Value'],
        (e.headers || []).map(([k, v]) => h('tr', {}, h('td', { class: 'mono', text: k }), h('td', { class: 'mono wrap', text: v }))),
        { class: 'headers' }));
      body.textContent = pretty(e.body, e.body_encoding);
    }
    return e.status === 'pending' ? POLL_MS : SETTLED_POLL_MS;
  };

  const again = () => refresh().catch(flashError);
  replayAll.addEventListener('click', () => replay(id, null, replayAll, again));
  const stop = every(POLL_MS, refresh);
  return { node, stop };
}

function dt(term, value) {
  return [h('dt', { text: term }), h('dd', {}, value)];
}

function destination(e, d, again) {
  const button = h('button', { type: 'button', class: 'small replay-one', text: `Replay to ${d.subscription}` });
  button.addEventListener('click', () => replay(e.id, d.subscription, button, again));
  const a = d.attempts;
  return h('div', { class: 'destination', dataset: { subscription: d.subscription, status: d.status } },
    h('h3', {}, h('span', { text: d.subscription }), ' ', badge(d.status), ' ', button),
    h('p', { class: 'muted' },
      `${attempts(a.total)} (${a.succeeded} succeeded, ${a.failed} failed)`,
      d.next_attempt_at ? `; next attempt ${time(d.next_attempt_at)}` : ''),
    h('ol', { class: 'timeline' }, d.attempt_log.map((t) => h('li', {
      class: `attempt ${t.status_code >= 200 && t.status_code < 300 ? 'ok' : 'fail'}`,
      dataset: { attempt: t.attempt },
    },
    h('span', { class: 'a-n', text: `#${t.attempt}` }),
    h('time', { class: 'a-time', datetime: t.at, text: time(t.at, true) }),
    h('span', { class: 'a-status', text: t.status_code ?? 'no response' }),
    h('span', { class: 'a-latency', text: t.latency_ms == null ? '' : `${t.latency_ms} ms` }),
    t.error ? h('span', { class: 'a-error', text: t.error }) : null,
    t.response ? h('pre', { class: 'a-response', text: t.response }) : null,
    t.next_attempt_at ? h('span', { class: 'a-next muted' }, 'next attempt ',
      h('time', { datetime: t.next_attempt_at, text: time(t.next_attempt_at, true) })) : null))));
}

async function replay(id, subscription, button, again) {
  button.disabled = true;
  try {
    const r = await api('POST', `/admin/events/${seg(id)}/replay`, subscription ? { subscription } : {});
    flash(`Replay queued as ${r.id} to ${r.subscriptions.join(', ')}.`);
    again();
  } catch (e) {
    flashError(e);
  } finally {
    button.disabled = false;
  }
}
