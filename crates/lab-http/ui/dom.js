// Small DOM and API helpers. Everything a run wrote is inserted as text
// nodes (append of strings), never as HTML.

const token = document.querySelector('meta[name="lab-token"]').content;
// Where the host mounted the Lab (`/lab`), or '' at the root of its own
// origin. API paths the UI writes (`/api/…`) are sent beneath it; the URLs
// the API hands out carry it already.
export const base = document.querySelector('meta[name="lab-prefix"]').content;
// The page binding's storage key, namespaced by the prefix: two Labs on one
// origin keep their bindings apart.
export const BINDING_KEY = base ? `lab-binding:${base}` : 'lab-binding';

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export const svg = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat(Infinity)) if (child) node.append(child);
  return node;
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// JSON API call. The token goes in X-Lab-Token on every mutation and
// nowhere else: never in a URL, a cookie or web storage.
// The page binding the login stored (see login.js); sent on every API call.
const binding = localStorage.getItem(BINDING_KEY) || '';

export async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), 'X-Lab-Binding': binding };
  const method = options.method || 'GET';
  if (method !== 'GET' && method !== 'HEAD') headers['X-Lab-Token'] = token;
  let body = options.body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  return jsonOf(await send(path, { method, headers, body, credentials: 'same-origin' }));
}

// Most times a request refused with 429 is sent again.
const RETRIES_AFTER_429 = 2;

// fetch(), but a 429 (failed credentials over the server-wide rate, SPEC
// §4: refused before anything is done, so even a mutation may be sent
// again) is retried after its Retry-After seconds, at most twice.
async function send(path, init) {
  const url = path.startsWith('/api/') ? base + path : path;
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(url, init);
    if (response.status !== 429 || attempt >= RETRIES_AFTER_429) return response;
    const seconds = Number(response.headers.get('Retry-After'));
    const wait = Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 10) : 1;
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
}

// The JSON of an API answer, or its error (the API's own `error`, else the
// status) thrown as an ApiError; a 401 says the session ended.
async function jsonOf(response) {
  if (response.status === 401) sessionEnded();
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const err = data && data.error ? data.error : { code: 'http_' + response.status, message: response.statusText };
    throw new ApiError(response.status, err.code, err.message);
  }
  return data;
}

// A GET that may answer 304: sends If-None-Match with the ETag of what the
// caller holds, and returns { status, etag, data } (data null on a 304).
// What polling a live run costs: a 304 moves no body.
export async function apiConditional(path, etag) {
  const headers = { 'X-Lab-Binding': binding };
  if (etag) headers['If-None-Match'] = etag;
  const response = await send(path, { headers, credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 304) return { status: 304, etag, data: null };
  const data = await jsonOf(response);
  return { status: response.status, etag: response.headers.get('ETag'), data };
}

// The bytes of an artifact from `offset` on (Range), for following a log
// that grows: { text, total } with the file's size now; `text` is empty
// when nothing was appended; `shrunk` when the file is shorter than
// `offset` (rewritten: read its tail again). `artifact` is an entry of a
// run's `artifacts` as the API gave it: its `url` is the only way to it.
// The range starts one byte early, so a log that did not grow answers 206
// with that byte (dropped here) rather than 416: a page following a
// finished run's log makes no failed request.
export async function artifactFrom(artifact, offset) {
  const from = Math.max(0, offset - 1);
  const headers = offset > 0 ? { Range: `bytes=${from}-` } : {};
  const response = await artifactFetch(artifact, headers, 'no-store');
  if (response.status === 416) {
    const total = Number((response.headers.get('Content-Range') || '').split('/')[1] || 0);
    return { text: '', total, shrunk: total < offset };
  }
  if (response.status !== 206 && !response.ok) throw new ApiError(response.status, 'artifact', `${artifact.name}: ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const skip = response.status === 206 ? offset - from : 0;
  const text = new TextDecoder().decode(bytes.subarray(Math.min(skip, bytes.length)));
  return { text, total: totalFrom(response), shrunk: false };
}

// A fetch of an artifact by the URL the API gave for it (never one built
// here). It carries the binding as api() does, so a page open longer than
// the URL's signature lasts still reads what it follows.
function artifactFetch(artifact, headers, cache) {
  if (!artifact || !artifact.url) {
    return Promise.reject(new ApiError(0, 'no_url', `${artifact ? artifact.name : 'artifact'}: the API gave no URL for it`));
  }
  return send(artifact.url, { headers: { ...headers, 'X-Lab-Binding': binding }, credentials: 'same-origin', cache });
}

// What the user chose to keep between visits (views, columns, chart
// settings): preferences only, never a token, key or run data.
export function pref(name, fallback) {
  try {
    const v = localStorage.getItem(`lab-pref-${name}`);
    return v === null ? fallback : JSON.parse(v);
  } catch { return fallback; }
}

export function setPref(name, value) {
  try { localStorage.setItem(`lab-pref-${name}`, JSON.stringify(value)); } catch { /* storage full or off */ }
}

// The first `max` bytes of an artifact (Range: never more, whatever the
// file holds now) as text, with the file's whole length (`total`). An
// empty file answers 416: no text.
export async function artifactHead(artifact, max) {
  const response = await artifactFetch(artifact, { Range: `bytes=0-${max - 1}` });
  if (response.status === 416) return { text: '', total: 0 };
  if (!response.ok) throw new ApiError(response.status, 'artifact', `${artifact.name}: ${response.status}`);
  return { text: await response.text(), total: totalFrom(response) };
}

// Text of an artifact (an entry of a run's `artifacts`, with its `url`),
// optionally only its last `tail` bytes (Range).
export async function artifactText(artifact, tail) {
  const response = await artifactFetch(artifact, tail ? { Range: `bytes=-${tail}` } : {});
  if (!response.ok && response.status !== 206) throw new ApiError(response.status, 'artifact', `${artifact.name}: ${response.status}`);
  // A suffix range of a file shorter than it is the whole file (206 from
  // byte 0): only a range starting later cut a line.
  const from = /^bytes (\d+)-/.exec(response.headers.get('Content-Range') || '');
  const partial = response.status === 206 && !!from && Number(from[1]) > 0;
  return { text: await response.text(), partial, total: totalFrom(response) };
}

function totalFrom(response) {
  const range = response.headers.get('Content-Range');
  if (range && range.includes('/')) return Number(range.split('/')[1]);
  return Number(response.headers.get('Content-Length') || 0);
}

export function size(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function date(text) {
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? String(text) : d.toISOString().replace('T', ' ').slice(0, 16);
}

let toastTimer = null;
// The session is gone (the Lab restarted: every start makes a new key and
// forgets every session). Said once, in a banner that stays, instead of
// requests failing one by one.
export function sessionEnded() {
  if (document.getElementById('session-ended')) return;
  const banner = el('div', { id: 'session-ended', class: 'session-ended', role: 'alert' },
    el('strong', {}, 'Your session has ended. '),
    'The Lab was restarted (or you signed out): each start makes a new key. Open the link `lab serve` printed last (lab: open http://…/#key=…).');
  document.body.prepend(banner);
}

// A video or image that fails to load may have failed for want of a
// session: ask the API, which says so with a 401.
export async function checkSession() {
  try { await fetch(`${base}/api/status`, { credentials: 'same-origin', headers: { 'X-Lab-Binding': binding } }).then((r) => { if (r.status === 401) sessionEnded(); }); } catch { /* offline */ }
}

export function showError(err) {
  const box = $('error');
  box.textContent = String((err && err.message) || err);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

// The toast put away (its view was left).
export function hideError() {
  clearTimeout(toastTimer);
  $('error').hidden = true;
}

// A JSON value as a readable definition list / nested lists (text only).
export function valueTree(value, depth = 0) {
  if (value === null || typeof value !== 'object') {
    return el('span', { class: 'v-' + (value === null ? 'null' : typeof value) }, value === null ? 'null' : String(value));
  }
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object') && value.length <= 24) {
      return el('span', { class: 'v-list' }, value.map((v) => String(v)).join(', ') || '(empty)');
    }
    return el('ol', { class: 'tree' }, value.map((v) => el('li', {}, valueTree(v, depth + 1))));
  }
  const entries = Object.entries(value);
  if (!entries.length) return el('span', { class: 'v-null' }, '(empty)');
  return el('dl', { class: 'tree' }, entries.map(([k, v]) => [el('dt', {}, k), el('dd', {}, valueTree(v, depth + 1))]));
}
