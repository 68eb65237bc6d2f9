// DOM building. Every value goes in as text (text nodes, textContent,
// attributes set one by one): webhook bodies and headers are written by
// whoever sent them, and must never become markup.

const REFUSED = /^(on|style$|srcdoc$|src$|formaction$)/i;

/** h('tr', {class: 'x', on: {click: fn}}, child, 'text', [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = String(v);
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = Boolean(v);
    else if (k === 'href') el.setAttribute('href', internalHref(v));
    else if (REFUSED.test(k)) throw new Error(`refused attribute ${k}`);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Links only ever go to the console's own pages (no javascript:, no
// other origin), whatever ends up in them.
function internalHref(v) {
  const s = String(v);
  if (!s.startsWith('#/')) throw new Error('refused link');
  return s;
}

export function eventHref(id) {
  return `#/events/${encodeURIComponent(id)}`;
}

/** A time in the viewer's zone; `ms` adds milliseconds (retries are close). */
export function time(iso, ms = false) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
    ...(ms ? { fractionalSecondDigits: 3 } : {}),
  });
}

export function badge(status) {
  return h('span', { class: `badge s-${String(status).replace(/[^a-z]/g, '')}`, text: status });
}

/** A body as text, pretty-printed when it is JSON. */
export function pretty(body, encoding) {
  if (encoding === 'base64') return `(binary, base64)\n${body}`;
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

export function table(head, rows, attrs) {
  return h('table', attrs || {},
    h('thead', {}, h('tr', {}, head.map((t) => h('th', { text: t })))),
    h('tbody', {}, rows));
}

/** Copy `text`; the button says whether it worked. */
export function copyButton(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'small', text: label });
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Select and copy';
    }
    setTimeout(() => { b.textContent = label; }, 1500);
  });
  return b;
}

/** Run `fn` now and then `ms` after each run ends (or as many ms as the
 * run returns); returns stop(). A failed run is reported once, and the
 * report cleared when one succeeds. */
export function every(ms, fn) {
  let stopped = false;
  let timer = null;
  let failing = false;
  let wait = ms;
  const tick = async () => {
    if (stopped) return;
    wait = ms;
    try {
      const next = await fn();
      if (typeof next === 'number') wait = next;
      if (failing) document.getElementById('flash').replaceChildren();
      failing = false;
    } catch (e) {
      if (!stopped && !failing) flashError(e);
      failing = true;
    }
    if (!stopped) timer = setTimeout(tick, wait);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

let flashTimer = null;

/** A short message above the page (errors stay until the next one). */
export function flash(text, kind = 'ok') {
  const box = document.getElementById('flash');
  clearTimeout(flashTimer);
  box.replaceChildren(h('p', { class: `flash ${kind}`, text }));
  if (kind === 'ok') flashTimer = setTimeout(() => box.replaceChildren(), 6000);
}

export function flashError(e) {
  flash(e && e.message ? e.message : String(e), 'error');
}
