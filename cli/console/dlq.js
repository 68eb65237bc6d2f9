// Dead letters: pick some and redrive them; bulk replay by filter, with a
// dry run's count shown before anything is sent.

import { api, qs } from './api.js';
import { h, time, every, eventHref, flash, flashError } from './dom.js';

const POLL_MS = 5000;

export function dlqPage() {
  const selected = new Set();
  const body = h('tbody', {});
  const redrive = h('button', { type: 'button', id: 'redrive', text: 'Redrive selected', disabled: true });
  const all = h('input', { type: 'checkbox', id: 'dlq-all', 'aria-label': 'select all' });
  let shown = [];

  const sync = () => {
    redrive.disabled = selected.size === 0;
    redrive.textContent = selected.size ? `Redrive ${selected.size} selected` : 'Redrive selected';
    all.checked = shown.length > 0 && shown.every((d) => selected.has(d.id));
  };

  const refresh = async () => {
    const page = await api('GET', `/admin/dlq${qs({ limit: 200 })}`);
    shown = page.dead_letters;
    const ids = new Set(shown.map((d) => d.id));
    for (const id of [...selected]) if (!ids.has(id)) selected.delete(id);
    body.replaceChildren(...shown.map((d) => {
      const box = h('input', { type: 'checkbox', class: 'pick', checked: selected.has(d.id), 'aria-label': `select ${d.id}` });
      box.addEventListener('change', () => { if (box.checked) selected.add(d.id); else selected.delete(d.id); sync(); });
      return h('tr', { dataset: { deadLetter: d.id, event: d.event } },
        h('td', {}, box),
        h('td', { class: 'nowrap', text: time(d.at) }),
        h('td', {}, h('a', { href: eventHref(d.event), text: d.event })),
        h('td', { text: d.subscription }),
        h('td', { class: 'wrap', text: d.reason }),
        h('td', { text: d.receive_count }));
    }));
    if (!shown.length) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No dead letters.' })));
    sync();
  };

  all.addEventListener('change', () => {
    for (const d of shown) { if (all.checked) selected.add(d.id); else selected.delete(d.id); }
    for (const box of body.querySelectorAll('input.pick')) box.checked = all.checked;
    sync();
  });
  redrive.addEventListener('click', async () => {
    redrive.disabled = true;
    try {
      const r = await api('POST', '/admin/dlq/redrive', { ids: [...selected], limit: selected.size });
      flash(`${r.redriven} deliver${r.redriven === 1 ? 'y' : 'ies'} redriven` +
        (r.skipped.length ? `; ${r.skipped.length} skipped: ${r.skipped.map((s) => s.reason).join('; ')}` : '.'),
      r.skipped.length ? 'error' : 'ok');
      selected.clear();
      await refresh();
    } catch (e) {
      flashError(e);
      sync();
    }
  });

  const node = h('section', { class: 'dlq' },
    h('h1', { text: 'Dead letters' }),
    h('p', { class: 'muted', text: 'Deliveries that ran out of retries. Redriving one replays its event to its destination.' }),
    h('div', { class: 'actions' }, redrive),
    h('table', { id: 'dead-letters' },
      h('thead', {}, h('tr', {}, h('th', {}, all), ['Dead since', 'Event', 'Subscription', 'Reason', 'Receives'].map((t) => h('th', { text: t })))),
      body),
    bulkReplay());
  const stop = every(POLL_MS, refresh);
  return { node, stop };
}

function bulkReplay() {
  const field = (name, placeholder) => h('input', { name, id: `b-${name}`, placeholder });
  const source = field('source', 'source');
  const subscription = field('subscription', 'subscription');
  const status = h('select', { name: 'status', id: 'b-status' },
    h('option', { value: 'failed', text: 'failed deliveries' }),
    h('option', { value: 'delivered', text: 'delivered deliveries' }));
  const since = field('since', 'since (24h or RFC 3339)');
  const until = field('until', 'until');
  const preview = h('button', { type: 'button', id: 'bulk-preview', text: 'Preview' });
  const run = h('button', { type: 'button', id: 'bulk-run', text: 'Replay', disabled: true });
  const result = h('p', { id: 'bulk-result', class: 'muted' });
  let planned = null;

  const input = () => ({
    source: source.value.trim() || undefined,
    subscription: subscription.value.trim() || undefined,
    status: status.value,
    since: since.value.trim() || undefined,
    until: until.value.trim() || undefined,
  });
  const reset = () => { planned = null; run.disabled = true; run.textContent = 'Replay'; };
  for (const el of [source, subscription, status, since, until]) el.addEventListener('input', reset);

  preview.addEventListener('click', async () => {
    reset();
    try {
      const body = input();
      const r = await api('POST', '/admin/replay', { ...body, dry_run: true });
      const events = r.replays.length;
      result.textContent = `${r.more ? 'At least ' : ''}${r.replayed} deliver${r.replayed === 1 ? 'y' : 'ies'} of ${events} event${events === 1 ? '' : 's'} would be replayed` +
        (r.skipped.length ? `; ${r.skipped.length} would be skipped.` : '.');
      if (r.replayed > 0) {
        planned = body;
        run.disabled = false;
        run.textContent = `Replay ${r.replayed}`;
      }
    } catch (e) {
      flashError(e);
    }
  });
  run.addEventListener('click', async () => {
    if (!planned) return;
    run.disabled = true;
    try {
      const r = await api('POST', '/admin/replay', planned);
      flash(`${r.replayed} deliver${r.replayed === 1 ? 'y' : 'ies'} replayed${r.more ? '; more match: run it again' : ''}.`);
      result.textContent = '';
    } catch (e) {
      flashError(e);
    }
    reset();
  });

  return h('section', { class: 'bulk' },
    h('h2', { text: 'Bulk replay' }),
    h('p', { class: 'muted', text: 'Replay every delivery that matches. Preview shows how many first.' }),
    h('form', { class: 'filters', id: 'bulk-filters' }, source, subscription, status, since, until, preview, run),
    result);
}
