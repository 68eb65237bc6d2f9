// The console: a hash router over a few pages, all fed by the admin API.

import { api, token, whenUnauthorized, ApiError } from './api.js';
import { h, flash } from './dom.js';
import { eventsPage, eventPage } from './events.js';
import { dlqPage } from './dlq.js';
import { sourcesPage, pollersPage } from './config.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOut = document.getElementById('sign-out');
const flashBox = document.getElementById('flash');

let stopPage = () => {};

const routes = [
  [/^#\/events\/(.+)$/, (m) => eventPage(decodeURIComponent(m[1]))],
  [/^#\/dlq$/, () => dlqPage()],
  [/^#\/sources$/, () => sourcesPage()],
  [/^#\/pollers$/, () => pollersPage()],
  [/^(#\/events)?$/, () => eventsPage()],
];

function route() {
  stopPage();
  stopPage = () => {};
  flashBox.replaceChildren();
  if (!token.get()) {
    nav.hidden = true;
    signOut.hidden = true;
    main.replaceChildren(signIn());
    return;
  }
  nav.hidden = false;
  signOut.hidden = false;
  const hash = location.hash || '#/events';
  for (const a of nav.querySelectorAll('a')) {
    a.classList.toggle('active', hash.startsWith(a.getAttribute('href')));
  }
  for (const [re, page] of routes) {
    const m = hash.match(re);
    if (m) {
      const { node, stop } = page(m);
      main.replaceChildren(node);
      stopPage = stop || (() => {});
      return;
    }
  }
  main.replaceChildren(h('p', { text: 'No such page.' }));
}

function signIn() {
  const input = h('input', {
    type: 'password', id: 'token', name: 'token', autocomplete: 'off',
    required: true, placeholder: 'admin token', 'aria-label': 'Admin token',
  });
  const error = h('p', { class: 'error', id: 'sign-in-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', id: 'sign-in', text: 'Sign in' });
  const form = h('form', { class: 'sign-in', autocomplete: 'off' },
    h('h1', { text: 'Sign in' }),
    h('p', { class: 'muted', text: 'Paste the gateway\u2019s admin token ([admin] token in its config). It is kept in this tab only.' }),
    input, button, error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    button.disabled = true;
    error.hidden = true;
    try {
      // Any authorised read proves the token.
      await api('GET', '/admin/sources', undefined, t);
      token.set(t);
      route();
    } catch (e) {
      error.textContent = e instanceof ApiError && e.status === 401
        ? 'Wrong token: the gateway refused it.'
        : (e.message || 'Sign-in failed.');
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  queueMicrotask(() => input.focus());
  return form;
}

whenUnauthorized(() => {
  token.clear();
  route();
  flash('The admin token is no longer accepted; sign in again.', 'error');
});

signOut.addEventListener('click', () => {
  token.clear();
  location.hash = '#/events';
  route();
});

window.addEventListener('hashchange', route);
route();
