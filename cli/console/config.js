// Sources and subscriptions (create, pause, rotate a secret), and pollers.

import { api, seg } from './api.js';
import { h, time, badge, every, copyButton, flash, flashError } from './dom.js';

const POLL_MS = 5000;

export function sourcesPage() {
  const sources = h('tbody', {});
  const subs = h('tbody', {});
  const secretBox = h('div', { id: 'secret-box' });
  const sourceChoice = h('select', { name: 'source', id: 'new-source', required: true, 'aria-label': 'source' });

  const load = async () => {
    const [s, p, subList, where] = await Promise.all([
      api('GET', '/admin/sources'), api('GET', '/admin/pollers'), api('GET', '/admin/subscriptions'),
      pageSettings()]);
    sources.replaceChildren(...s.sources.map((x) => sourceRow(x, where)));
    if (!s.sources.length) sources.append(h('tr', {}, h('td', { colspan: 4, class: 'muted', text: 'No sources.' })));
    subs.replaceChildren(...subList.subscriptions.map((x) => subscriptionRow(x, load, showSecret)));
    if (!subList.subscriptions.length) subs.append(h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No subscriptions.' })));
    const keep = sourceChoice.value;
    sourceChoice.replaceChildren(...[...s.sources, ...p.pollers].map((x) => h('option', { value: x.id, text: x.id })));
    if (keep) sourceChoice.value = keep;
  };

  // A new secret is shown here once: it is in no list, and it is gone
  // when the page is left.
  function showSecret(subscription, secret, what) {
    const done = h('button', { type: 'button', class: 'small', id: 'secret-done', text: 'Done' });
    done.addEventListener('click', () => secretBox.replaceChildren());
    secretBox.replaceChildren(h('div', { class: 'secret' },
      h('p', {}, h('strong', { text: `${what} for ${subscription}. ` }),
        'Copy it now: it is not shown again.'),
      h('code', { id: 'new-secret', text: secret }), ' ', copyButton(secret), ' ', done));
  }

  const form = createForm(sourceChoice, async (view) => {
    showSecret(view.id, view.signing_secret, 'Signing secret');
    await load();
  });

  const node = h('section', { class: 'config' },
    h('h1', { text: 'Sources' }),
    h('table', { id: 'sources' },
      h('thead', {}, h('tr', {}, ['Source', 'Provider', 'State', 'Webhook URL'].map((t) => h('th', { text: t })))),
      sources),
    h('h1', { text: 'Subscriptions' }),
    secretBox,
    h('table', { id: 'subscriptions' },
      h('thead', {}, h('tr', {}, ['Subscription', 'Source', 'Events', 'Destination', 'State', ''].map((t) => h('th', { text: t })))),
      subs),
    h('h2', { text: 'New subscription' }),
    form);
  load().catch(flashError);
  return { node, stop: () => {} };
}

let settings;
/** Where the page runs (`sluice console`: the deployment's webhook base URL). */
function pageSettings() {
  settings ??= fetch('/console/settings.json', { cache: 'no-store', credentials: 'omit' })
    .then((r) => (r.ok ? r.json() : {}))
    .catch(() => ({}));
  return settings;
}

/** The URL to give the provider: the source's public_url (the providers
 * that sign it), else the deployment's webhook base, else this page's own
 * address (sluice serve receives webhooks where it serves the console). */
function webhookUrl(s, where) {
  if (s.public_url) return s.public_url;
  if (where.webhook_base) return `${where.webhook_base.replace(/\/+$/, '')}/${encodeURIComponent(s.id)}`;
  return new URL(s.path, location.origin).href;
}

function sourceRow(s, where) {
  const url = webhookUrl(s, where);
  return h('tr', { dataset: { source: s.id } },
    h('td', { text: s.id }),
    h('td', { text: s.provider || '' }),
    h('td', {}, badge(s.enabled ? 'enabled' : 'disabled'), ...handshakeBadge(s)),
    h('td', {}, h('input', { class: 'url', readonly: true, value: url, 'aria-label': `webhook URL of ${s.id}` }), ' ', copyButton(url)));
}

/** A source whose provider sends its secret in a handshake (Asana) refuses
 * events until that handshake has come. */
function handshakeBadge(s) {
  const label = { awaiting: 'awaiting handshake', unreadable: 'secret unreadable' }[s.handshake];
  return label ? [' ', badge(label)] : [];
}

function subscriptionRow(s, reload, showSecret) {
  const toggle = h('button', { type: 'button', class: 'small toggle', text: s.enabled ? 'Pause' : 'Resume' });
  toggle.addEventListener('click', async () => {
    toggle.disabled = true;
    try {
      await api('POST', `/admin/subscriptions/${seg(s.id)}/${s.enabled ? 'disable' : 'enable'}`);
      flash(`${s.id} ${s.enabled ? 'paused' : 'resumed'}.`);
      await reload();
    } catch (e) {
      flashError(e);
      toggle.disabled = false;
    }
  });
  const fromFile = s.origin === 'file';
  const rotate = h('button', {
    type: 'button', class: 'small rotate', text: 'Rotate secret', disabled: fromFile,
    title: fromFile ? 'Defined in the config file: rotate it there' : 'A new secret; the old one keeps signing for 24 h',
  });
  rotate.addEventListener('click', async () => {
    rotate.disabled = true;
    try {
      const v = await api('POST', `/admin/subscriptions/${seg(s.id)}/rotate-secret`, {});
      showSecret(s.id, v.signing_secret, 'New signing secret');
      await reload();
    } catch (e) {
      flashError(e);
      rotate.disabled = false;
    }
  });
  return h('tr', { dataset: { subscription: s.id, enabled: String(s.enabled) } },
    h('td', { text: s.id }),
    h('td', { text: s.source }),
    h('td', { class: 'mono', text: (s.events || []).join(', ') }),
    h('td', { class: 'mono wrap', text: s.url }),
    h('td', {}, badge(s.enabled ? 'active' : 'paused'), fromFile ? h('span', { class: 'muted', text: ' (config file)' }) : null),
    h('td', { class: 'nowrap' }, toggle, ' ', rotate));
}

function createForm(sourceChoice, created) {
  const id = h('input', { name: 'id', id: 'new-id', placeholder: 'id (optional)' });
  const url = h('input', { name: 'url', id: 'new-url', type: 'url', required: true, placeholder: 'https://example.com/webhooks' });
  const events = h('input', { name: 'events', id: 'new-events', value: '*', required: true, placeholder: 'event types: push, pull_request.*' });
  const local = h('input', { type: 'checkbox', name: 'allow_local', id: 'new-allow-local' });
  const submit = h('button', { type: 'submit', id: 'new-create', text: 'Create subscription' });
  const form = h('form', { class: 'create', id: 'new-subscription' },
    h('label', {}, 'Source ', sourceChoice), h('label', {}, 'Id ', id), h('label', {}, 'Destination ', url),
    h('label', {}, 'Events ', events),
    h('label', { class: 'check' }, local, ' allow http:// and private addresses (local use only)'),
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    try {
      const body = {
        source: sourceChoice.value,
        url: url.value.trim(),
        events: events.value.split(',').map((e) => e.trim()).filter(Boolean),
        allow_local: local.checked,
      };
      if (id.value.trim()) body.id = id.value.trim();
      const view = await api('POST', '/admin/subscriptions', body);
      id.value = '';
      url.value = '';
      await created(view);
    } catch (e) {
      flashError(e);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export function pollersPage() {
  const body = h('tbody', {});
  const refresh = async () => {
    const r = await api('GET', '/admin/pollers');
    body.replaceChildren(...r.pollers.map((p) => pollerRow(p, refresh)));
    if (!r.pollers.length) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No pollers.' })));
  };
  const node = h('section', { class: 'pollers' },
    h('h1', { text: 'Pollers' }),
    h('p', { class: 'muted', text: 'Apps without webhooks, polled on a schedule; each new item becomes an event.' }),
    h('table', { id: 'pollers' },
      h('thead', {}, h('tr', {}, ['Poller', 'URL', 'State', 'Last poll', 'Next poll', ''].map((t) => h('th', { text: t })))),
      body));
  const stop = every(POLL_MS, refresh);
  return { node, stop };
}

function pollerRow(p, reload) {
  const st = p.state || {};
  const run = h('button', { type: 'button', class: 'small poll-now', text: 'Poll now', disabled: !p.enabled });
  run.addEventListener('click', async () => {
    run.disabled = true;
    try {
      const r = await api('POST', `/admin/pollers/${seg(p.id)}/run`, {});
      const n = (r.emitted || []).length;
      flash(`${p.id}: ${(r.result || 'polled').replace(/_/g, ' ')}, ${n} new item${n === 1 ? '' : 's'}.`);
      await reload();
    } catch (e) {
      flashError(e);
      run.disabled = false;
    }
  });
  const toggle = h('button', { type: 'button', class: 'small toggle', text: p.enabled ? 'Pause' : 'Resume' });
  toggle.addEventListener('click', async () => {
    toggle.disabled = true;
    try {
      await api('POST', `/admin/pollers/${seg(p.id)}/${p.enabled ? 'disable' : 'enable'}`);
      await reload();
    } catch (e) {
      flashError(e);
      toggle.disabled = false;
    }
  });
  return h('tr', { dataset: { poller: p.id } },
    h('td', { text: p.id }),
    h('td', { class: 'mono wrap', text: p.url }),
    h('td', {}, badge(p.enabled ? 'active' : 'paused'), ' ',
      st.last_result ? badge(st.last_result) : null,
      st.failures ? h('span', { class: 'muted', text: ` ${st.failures} failure${st.failures === 1 ? '' : 's'}` }) : null,
      st.last_error ? h('div', { class: 'error wrap', text: st.last_error }) : null),
    h('td', { class: 'nowrap' }, time(st.last_poll_at),
      st.emitted_total != null ? h('div', { class: 'muted', text: `${st.emitted_total} emitted in all` }) : null),
    h('td', { class: 'nowrap', text: time(st.next_poll_at) }),
    h('td', { class: 'nowrap' }, run, ' ', toggle));
}
