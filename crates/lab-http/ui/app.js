// The plain Lab page: runs list, run page with artifacts and video.
// Everything a run wrote is inserted as text nodes, never as HTML.
const token = document.querySelector('meta[name="lab-token"]').content;
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method && options.method !== 'GET') headers['X-Lab-Token'] = token;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

function showError(err) {
  $('error').textContent = String(err.message || err);
  $('error').hidden = false;
}

function size(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

const artifactUrl = (id, name) =>
  `/api/runs/${encodeURIComponent(id)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`;

let cursor = null;

async function loadRuns(reset) {
  if (reset) { cursor = null; $('runs').replaceChildren(); }
  const params = new URLSearchParams({ limit: '100' });
  if (cursor) params.set('cursor', cursor);
  const q = $('filter').value.trim();
  if (q) params.set('q', q);
  const page = await api(`/api/runs?${params}`);
  for (const run of page.runs) {
    $('runs').append(el('li', {}, el('a', { href: `#/runs/${encodeURIComponent(run.id)}` },
      el('strong', {}, run.name), el('br'), el('span', { class: 'id' }, run.id))));
  }
  cursor = page.next_cursor;
  $('more').hidden = !cursor;
}

async function showRun(id) {
  const run = await api(`/api/runs/${encodeURIComponent(id)}`);
  currentRun = run.id;
  $('export-result').replaceChildren();
  const title = run.meta && typeof run.meta.name === 'string' ? run.meta.name : run.name;
  $('run-title').textContent = title;
  $('run-path').textContent = `${run.id} — ${run.path}`;
  const videos = $('videos');
  videos.replaceChildren();
  const rows = $('artifacts').tBodies[0];
  rows.replaceChildren();
  for (const a of run.artifacts) {
    const url = artifactUrl(run.id, a.name);
    rows.append(el('tr', {}, el('td', {}, el('a', { href: url }, a.name)), el('td', {}, size(a.size)), el('td', {}, a.type)));
    if (a.type === 'video/mp4') {
      const video = el('video', { controls: '', preload: 'metadata', src: url });
      video.dataset.artifact = a.name;
      video.addEventListener('error', () => {
        videos.append(el('p', { class: 'error' }, `${a.name}: this browser cannot play the file (codec not supported?)`));
      });
      videos.append(el('h3', {}, a.name), video);
    }
  }
  $('meta').textContent = run.meta ? JSON.stringify(run.meta, null, 2) : '(no run.toml or run.json)';
}

let currentRun = null;

async function exportRun() {
  const out = $('export-result');
  out.replaceChildren('exporting…');
  $('export').disabled = true;
  try {
    const made = await api(`/api/runs/${encodeURIComponent(currentRun)}/export`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({}),
    });
    out.replaceChildren('bundle ready: ',
      el('a', { href: `/api/exports/${encodeURIComponent(made.file)}`, download: made.file }, made.file),
      ` (${size(made.size)}, ${made.files} files, secrets redacted)`);
  } catch (err) {
    out.replaceChildren(`export failed: ${err.message}`);
  } finally {
    $('export').disabled = false;
  }
}

async function render() {
  $('error').hidden = true;
  const match = location.hash.match(/^#\/runs\/([a-z0-9-]+)$/);
  $('runs-view').hidden = Boolean(match);
  $('run-view').hidden = !match;
  try {
    if (match) await showRun(match[1]);
    else await loadRuns(true);
  } catch (err) { showError(err); }
}

async function status() {
  try {
    const s = await api('/api/status');
    const runner = s.runner.enabled ? 'runner enabled' : 'runner disabled';
    const net = s.runner.network_allowed ? 'network allowed' : 'network disabled';
    $('status').textContent = `${s.address} · v${s.version} · ${s.counts.runs} runs · ${runner} · ${net}`;
  } catch (err) { showError(err); }
}

$('filter-form').addEventListener('submit', (e) => { e.preventDefault(); loadRuns(true).catch(showError); });
$('filter').addEventListener('input', () => loadRuns(true).catch(showError));
$('more').addEventListener('click', () => loadRuns(false).catch(showError));
$('export').addEventListener('click', exportRun);
window.addEventListener('hashchange', render);
status();
render();
