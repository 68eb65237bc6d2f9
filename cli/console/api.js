// The admin API, called with the operator's token. The token lives in
// sessionStorage only: never in a URL, never in a cookie.

const KEY = 'sluice.admin-token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(message(status, body));
    this.status = status;
    this.body = body;
  }
}

function message(status, body) {
  if (status === 401) return 'The admin token was refused.';
  if (status === 404 && body && body.error === 'admin_disabled') {
    return 'The admin API is off on this gateway: set [admin] token in its config.';
  }
  const m = body && typeof body.message === 'string' ? body.message : `HTTP ${status}`;
  return body && body.field ? `${body.field}: ${m}` : m;
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

/** One call; `t` overrides the stored token (signing in checks a new one). */
export async function api(method, path, body, t) {
  const headers = { Authorization: `Bearer ${t ?? token.get() ?? ''}` };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, { message: 'The gateway cannot be reached.' });
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (resp.status === 401 && t === undefined) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const seg = (s) => encodeURIComponent(s);

/** `?a=1&b=2` of the non-empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
