// Lab UI: runs list, run page, compare, import, status strip, keyboard.
// Plain ES modules, no build step. Nothing a run wrote is ever inserted as
// HTML: names, notes, logs and provenance are text nodes.

import { $, el, api, artifactText, artifactUrl, size, date, showError, valueTree, checkSession } from './dom.js';

// Loaded from a login link while already signed in: the key leaves the
// address bar and history at once.
if (location.hash.startsWith('#key=')) history.replaceState(null, '', location.pathname + location.search);
// Media that fails to load (a 401 after a restart, say) is checked.
document.addEventListener('error', (event) => {
  if (event.target instanceof HTMLMediaElement || event.target instanceof HTMLImageElement) checkSession();
}, true);
import { metricsPanel, COLORS } from './chart.js';
import { player, step, syncGroup } from './player.js';

const view = $('view');
const state = {
  status: null,
  list: { q: '', tag: '', video: false, format: '', sort: 'created:desc', runs: [], cursor: null, total: 0 },
  selected: new Set(),
  order: [],        // run ids in the order last listed (for j/k on a run page)
  focus: 0,         // focused card on the list
  media: null,      // what space/arrows/[ ] act on: { toggle, seek, step, time }
  followTimer: null,
};

// ---------- status strip ----------

async function loadStatus() {
  try {
    const s = await api('/api/status');
    state.status = s;
    const badge = (text, kind) => el('span', { class: `badge ${kind}` }, text);
    $('status').replaceChildren(
      el('span', { class: 'addr', title: 'bound address' }, s.address),
      el('span', { class: 'muted' }, `v${s.version} · ${s.counts.runs} runs`),
      s.runner.enabled ? (s.runner.available ? badge('runner enabled', 'warn') : el('span', { class: 'badge bad', title: s.runner.unavailable || '' }, 'runner UNAVAILABLE')) : badge('runner disabled', 'ok'),
      s.runner.network_allowed ? badge('network allowed', 'warn') : badge('network disabled', 'ok'),
    );
  } catch (err) { showError(err); }
}

// Badges for the isolation layers a report says were in force (the probe's
// report in /api/status, or a job's own): each comes from the layer itself.
function isolationBadges(iso) {
  const badge = (text, kind, title) => el('span', { class: `badge ${kind}`, title: title || '' }, text);
  if (!iso || typeof iso !== 'object') return [badge('isolation unknown', 'bad')];
  if (iso.refused) return [badge(`refused: ${iso.refused.layer}`, 'bad', iso.refused.error)];
  const out = [];
  if (iso.network) out.push(badge(iso.network_namespace ? 'network: outbound IP via pasta, host loopback unreachable' : 'network: IP sockets in the host namespace', 'warn', iso.network));
  else out.push(iso.network_namespace ? badge('no network (own namespace)', 'ok') : badge('network isolation unknown', 'bad'));
  const ll = iso.landlock_filesystem;
  if (ll && ll.enforced === 'fully') out.push(badge(`Landlock ABI ${ll.abi}: writes only to its job directory, /tmp, /dev/shm`, 'ok', (ll.readable || []).join('\n')));
  else out.push(badge('Landlock not in force', 'bad'));
  if (iso.seccomp) out.push(badge('seccomp', 'ok', iso.seccomp));
  if (iso.mounts) out.push(badge('private /tmp, /dev/shm, /proc', 'ok', JSON.stringify(iso.mounts)));
  if (iso.pid_namespace) out.push(badge('own PID namespace', 'ok'));
  return out;
}

// ---------- runs list ----------

function listQuery(cursor) {
  const [sort, order] = state.list.sort.split(':');
  const p = new URLSearchParams({ limit: '100', sort, order });
  if (state.list.q) p.set('q', state.list.q);
  if (state.list.tag) p.set('tag', state.list.tag);
  if (state.list.video) p.set('has_video', 'true');
  if (state.list.format) p.set('format', state.list.format);
  if (cursor) p.set('cursor', cursor);
  return `/api/runs?${p}`;
}

async function fetchRuns(reset) {
  if (reset) { state.list.runs = []; state.list.cursor = null; }
  const page = await api(listQuery(reset ? null : state.list.cursor));
  state.list.runs.push(...page.runs);
  state.list.cursor = page.next_cursor;
  state.list.total = page.total;
  state.order = state.list.runs.map((r) => r.id);
}

function thumb(run) {
  if (run.thumbnail) return el('img', { src: artifactUrl(run.id, run.thumbnail), alt: '', loading: 'lazy', class: 'thumb' });
  if (run.video) {
    // First frame: only metadata and the first frame are fetched, by Range.
    const v = el('video', { muted: true, preload: 'metadata', class: 'thumb', 'aria-hidden': 'true' });
    v.muted = true;
    lazyVideos.observe(v);
    v.dataset.src = `${artifactUrl(run.id, run.video)}#t=0.1`;
    return v;
  }
  return el('div', { class: 'thumb none' }, 'no media');
}

const lazyVideos = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (e.isIntersecting && e.target.dataset.src) {
      e.target.src = e.target.dataset.src;
      delete e.target.dataset.src;
      lazyVideos.unobserve(e.target);
    }
  }
}, { rootMargin: '200px' });

function card(run, index) {
  const checkbox = el('input', { type: 'checkbox', 'aria-label': `select ${run.title} for comparison`, checked: state.selected.has(run.id) });
  checkbox.addEventListener('change', () => {
    if (checkbox.checked) state.selected.add(run.id); else state.selected.delete(run.id);
    updateCompareButton();
  });
  const item = el('li', { class: 'card', 'data-id': run.id, 'data-index': index },
    el('a', { href: `#/runs/${encodeURIComponent(run.id)}`, class: 'card-link' },
      thumb(run),
      el('span', { class: 'card-title' }, run.title),
      el('span', { class: 'card-id' }, run.id)),
    el('div', { class: 'card-meta' },
      el('span', { class: 'muted' }, date(run.created)),
      el('span', { class: 'badge format' }, run.format),
      run.status ? el('span', { class: 'badge' }, run.status.toLowerCase()) : null,
      run.has_video ? el('span', { class: 'badge' }, 'video') : null,
      run.error_count ? el('span', { class: 'badge warn', title: 'parts of this run could not be read' }, `${run.error_count} error${run.error_count > 1 ? 's' : ''}`) : null,
      run.available === false ? el('span', { class: 'badge warn' }, 'unavailable') : null),
    el('div', { class: 'tags' }, (run.tags || []).map((t) => el('button', { type: 'button', class: 'tag', onclick: () => { state.list.tag = t; renderList(true); } }, t))),
    el('label', { class: 'pick' }, checkbox, ' compare'));
  return item;
}

function updateCompareButton() {
  const button = $('compare-selected');
  if (!button) return;
  const n = state.selected.size;
  button.disabled = n < 2 || n > 4;
  button.textContent = n ? `Compare ${n} selected` : 'Compare (select 2–4)';
}

async function renderList(reset = true) {
  stopFollow();
  state.media = null;
  const search = el('input', { type: 'search', id: 'filter', placeholder: 'filter by name, id or tag', value: state.list.q, 'aria-label': 'filter runs' });
  let debounce = null;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { state.list.q = search.value.trim(); renderList(true).then(() => { const f = $('filter'); f.focus(); f.setSelectionRange(f.value.length, f.value.length); }); }, 200);
  });
  const sort = el('select', { id: 'sort', 'aria-label': 'sort' },
    [['created:desc', 'newest first'], ['created:asc', 'oldest first'], ['name:asc', 'name A–Z'], ['name:desc', 'name Z–A'], ['imported:desc', 'recently imported']]
      .map(([v, t]) => el('option', { value: v, selected: v === state.list.sort }, t)));
  sort.addEventListener('change', () => { state.list.sort = sort.value; renderList(true); });
  const format = el('select', { id: 'format', 'aria-label': 'format' },
    [['', 'all formats'], ['lab', 'lab'], ['tensorboard', 'TensorBoard'], ['mlflow', 'MLflow'], ['lightning', 'Lightning'], ['hydra', 'Hydra']]
      .map(([v, t]) => el('option', { value: v, selected: v === state.list.format }, t)));
  format.addEventListener('change', () => { state.list.format = format.value; renderList(true); });
  const video = el('input', { type: 'checkbox', id: 'has-video', checked: state.list.video });
  video.addEventListener('change', () => { state.list.video = video.checked; renderList(true); });
  const compare = el('button', { type: 'button', id: 'compare-selected', class: 'primary' });
  compare.addEventListener('click', () => { location.hash = `#/compare/${[...state.selected].map(encodeURIComponent).join(',')}`; });
  const tagChip = state.list.tag
    ? el('button', { type: 'button', class: 'tag active', title: 'clear tag filter', onclick: () => { state.list.tag = ''; renderList(true); } }, `tag: ${state.list.tag} ✕`)
    : null;
  try {
    if (reset) await fetchRuns(true);
  } catch (err) { showError(err); }
  const list = el('ul', { id: 'runs', class: 'cards' }, state.list.runs.map(card));
  const more = el('button', { type: 'button', id: 'more', hidden: !state.list.cursor }, 'Load more');
  more.addEventListener('click', async () => {
    try {
      const start = state.list.runs.length;
      await fetchRuns(false);
      list.append(...state.list.runs.slice(start).map((r, i) => card(r, start + i)));
      more.hidden = !state.list.cursor;
      count.textContent = `${state.list.runs.length} of ${state.list.total} runs`;
    } catch (err) { showError(err); }
  });
  const count = el('span', { class: 'muted', id: 'run-count' }, `${state.list.runs.length} of ${state.list.total} runs`);
  view.replaceChildren(
    el('section', { class: 'list-view' },
      el('div', { class: 'toolbar' }, search, el('label', {}, 'Sort ', sort), format, el('label', {}, video, ' has video'), tagChip, count, el('span', { class: 'grow' }), compare),
      warnings(),
      state.list.runs.length ? list : el('p', { class: 'empty' }, state.list.q || state.list.tag ? 'No run matches.' : 'No runs yet. Use “Import…” or start the Lab with --root DIR.'),
      more));
  updateCompareButton();
  state.focus = Math.min(state.focus, Math.max(0, state.list.runs.length - 1));
  highlight();
}

// What the last walk of the roots could not read (a broken mlflow.db, a
// directory cut short), from /api/status.
function warnings() {
  const list = (state.status && state.status.discovery_warnings) || [];
  if (!list.length) return null;
  return el('details', { class: 'panel warnings', id: 'discovery-warnings' },
    el('summary', {}, `${list.length} place${list.length > 1 ? 's' : ''} under the roots could not be read`),
    el('ul', { class: 'errors' }, list.map((w) => el('li', {}, w))));
}

function highlight() {
  document.querySelectorAll('.card.focused').forEach((c) => c.classList.remove('focused'));
  const c = document.querySelector(`.card[data-index="${state.focus}"]`);
  if (c) { c.classList.add('focused'); c.scrollIntoView({ block: 'nearest' }); }
}

// ---------- run page ----------

const TEXT_META = ['summary.json'];

async function renderRun(id) {
  stopFollow();
  const run = await api(`/api/runs/${encodeURIComponent(id)}`);
  const names = new Set(run.artifacts.map((a) => a.name));
  const section = (title, ...body) => el('section', { class: 'panel' }, el('h2', {}, title), ...body);

  const exportResult = el('span', { id: 'export-result', role: 'status' });
  const exportButton = el('button', { type: 'button', id: 'export' }, 'Export bundle');
  exportButton.addEventListener('click', () => exportRun(run.id, exportButton, exportResult));
  const position = state.order.indexOf(run.id);
  const header = el('header', { class: 'run-head' },
    el('div', {},
      el('h1', { id: 'run-title' }, run.title),
      el('p', { class: 'muted mono', id: 'run-path' }, `${run.id} — ${run.path}`),
      el('div', { class: 'tags' }, (run.tags || []).map((t) => el('span', { class: 'tag' }, t))),
      el('p', { class: 'muted', id: 'run-facts' }, `${run.format} run · created ${date(run.created)}${run.status ? ` · ${run.status.toLowerCase()}` : ''} · ${run.artifacts.length} artifacts · ${run.metrics.length} metrics`),
      run.description ? el('p', { id: 'run-description' }, run.description) : null),
    el('div', { class: 'actions' }, exportButton, exportResult,
      position >= 0 ? el('span', { class: 'muted' }, `run ${position + 1} of ${state.order.length} (j/k)`) : null));

  // Videos logged by step are shown under "Media by step" instead.
  const stepped = new Set((run.media || []).filter((m) => m.step !== null && m.step !== undefined).map((m) => m.name));
  const videos = run.artifacts.filter((a) => a.type.startsWith('video/') && !stepped.has(a.name));
  const players = videos.map((a) => player(artifactUrl(run.id, a.name), a.name));
  const first = players[0] && players[0].video;
  state.media = first ? {
    toggle: () => (first.paused ? first.play() : first.pause()),
    seek: (d) => { first.currentTime = Math.max(0, first.currentTime + d); },
    step: (n) => step(first, n),
  } : null;

  const parts = [header];
  const media = [];
  if (players.length) media.push(section('Video', el('div', { id: 'videos', class: 'videos' }, players.map((p) => p.node))));
  const byStep = mediaByStep(run);
  if (byStep) media.push(section('Media by step', byStep));

  // Metrics with a finite last value first: the chart opens on one that draws.
  const byValue = (ms) => ms.slice().sort((a, b) => (a.last === null) - (b.last === null) || a.name.localeCompare(b.name)).map((m) => m.name);
  const metricNames = byValue(run.metrics);
  if (metricNames.length) {
    media.push(section(`Metrics (${metricNames.length})`, el('div', { id: 'metrics' },
      metricsPanel([{ id: run.id, label: run.title, color: COLORS[0], metrics: metricNames }]))));
  }
  if (media.length) parts.push(el('div', { class: 'run-grid' }, media));

  if (run.errors.length) {
    parts.push(section('Could not be read', el('ul', { id: 'run-errors', class: 'errors' }, run.errors.map((e) => el('li', {}, e)))));
  }
  const params = Object.entries(run.params);
  const metaHolder = el('div', { class: 'meta-grid' });
  parts.push(section(`Parameters (${params.length})`,
    params.length ? el('table', { id: 'params', class: 'params' },
      el('tbody', {}, params.map(([k, v]) => el('tr', {}, el('th', { class: 'mono' }, k), el('td', { class: 'mono' }, v === null ? 'null' : String(v))))))
      : el('p', { class: 'muted' }, 'No parameters recorded.'),
    metaHolder));
  if (run.metrics.length) {
    parts.push(section('Last values', el('table', { id: 'last-values', class: 'params' },
      el('thead', {}, el('tr', {}, el('th', {}, 'metric'), el('th', {}, 'last'), el('th', {}, 'step'), el('th', {}, 'points'))),
      el('tbody', {}, run.metrics.map((m) => el('tr', {}, el('td', { class: 'mono' }, m.name),
        el('td', { class: 'num', title: m.last === null ? 'NaN or ±Inf' : String(m.last) }, m.last === null ? '—' : String(Number(m.last.toPrecision(7)))), el('td', { class: 'num' }, m.last_step ?? ''), el('td', { class: 'num' }, m.count.toLocaleString())))))));
  }
  if (run.texts.length) {
    parts.push(section('Text', el('div', { id: 'texts' }, run.texts.map((t) => el('div', { class: 'meta-item' }, el('h3', {}, `${t.tag} @ step ${t.step}`), el('pre', {}, t.text))))));
  }

  const provHolder = el('div', { id: 'provenance' });
  if (names.has('provenance.json')) parts.push(section('Provenance', provHolder));

  const notesHolder = el('div', { class: 'notes' });
  if (names.has('notes.md')) parts.push(section('Notes', notesHolder));

  const logNames = ['stdout.log', 'stderr.log'].filter((n) => names.has(n));
  const logs = el('div', { class: 'logs' });
  if (logNames.length) parts.push(section('Logs', logs));

  parts.push(section('Artifacts', el('table', { id: 'artifacts' },
    el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'size'), el('th', {}, 'type'))),
    el('tbody', {}, run.artifacts.map((a) => el('tr', {},
      el('td', {}, el('a', { href: artifactUrl(run.id, a.name), download: a.name.split('/').pop() }, a.name)),
      el('td', { class: 'num' }, size(a.size)), el('td', { class: 'muted' }, a.type)))))));
  view.replaceChildren(el('article', { class: 'run-view' }, parts));

  // Fill the panels.
  for (const name of TEXT_META.filter((n) => names.has(n) && !['run.toml', 'run.json'].includes(n))) {
    artifactText(run.id, name).then(({ text }) => {
      let body;
      if (name.endsWith('.json')) {
        try { body = valueTree(JSON.parse(text)); } catch { body = el('pre', {}, text); }
      } else body = el('pre', {}, text);
      metaHolder.append(el('div', { class: 'meta-item' }, el('h3', {}, name), body));
    }).catch(showError);
  }
  if (names.has('provenance.json')) {
    artifactText(run.id, 'provenance.json').then(({ text }) => {
      try { provHolder.replaceChildren(valueTree(JSON.parse(text))); } catch { provHolder.replaceChildren(el('pre', {}, text)); }
    }).catch(showError);
  }
  if (names.has('notes.md')) {
    artifactText(run.id, 'notes.md').then(({ text }) => notesHolder.replaceChildren(...markdownish(text))).catch(showError);
  }
  for (const name of logNames) logs.append(logPanel(run.id, name));
}

// Media the format logged under a key at a step (W&B's wandb.Video and
// wandb.Image): per key, a slider over its steps and the media at the step
// chosen. Null when the run has none with a step.
function mediaByStep(run) {
  const keyed = (run.media || []).filter((m) => m.step !== null && m.step !== undefined);
  if (!keyed.length) return null;
  const groups = new Map();
  for (const m of keyed) {
    const key = m.key || m.name;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(m);
  }
  const holder = el('div', { id: 'media-by-step', class: 'media-steps' });
  for (const [key, items] of groups) {
    items.sort((a, b) => a.step - b.step);
    const label = el('span', { class: 'muted mono' });
    const view = el('div', { class: 'media-view' });
    const slider = el('input', { type: 'range', min: 0, max: items.length - 1, value: items.length - 1, 'aria-label': `${key} step` });
    const show = () => {
      const m = items[Number(slider.value)];
      label.textContent = m.url ? `step ${m.step}` : `step ${m.step} · ${m.name.split('/').pop()}`;
      const url = m.url || artifactUrl(run.id, m.name);
      view.replaceChildren(m.kind === 'video'
        ? player(url, m.name).node
        : el('img', { src: url, alt: `${key} at step ${m.step}`, class: 'media-image' }));
    };
    slider.addEventListener('input', show);
    holder.append(el('div', { class: 'media-key', 'data-key': key },
      el('h3', {}, key), el('div', { class: 'toolbar' }, items.length > 1 ? slider : null, label), view));
    show();
  }
  return holder;
}

// Headings, lists, code fences and paragraphs, as text nodes only.
function markdownish(text) {
  const out = [];
  let para = [];
  let code = null;
  const flush = () => { if (para.length) { out.push(el('p', {}, para.join(' '))); para = []; } };
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) {
      if (code) { out.push(el('pre', {}, code.join('\n'))); code = null; } else { flush(); code = []; }
      continue;
    }
    if (code) { code.push(line); continue; }
    const h = line.match(/^(#{1,6})\s+(.*)$/);
    if (h) { flush(); out.push(el(`h${Math.min(6, h[1].length + 2)}`, {}, h[2])); continue; }
    const li = line.match(/^\s*[-*]\s+(.*)$/);
    if (li) { flush(); out.push(el('p', { class: 'li' }, '• ' + li[1])); continue; }
    if (!line.trim()) { flush(); continue; }
    para.push(line.trim());
  }
  if (code) out.push(el('pre', {}, code.join('\n')));
  flush();
  return out;
}

const TAIL_BYTES = 64 * 1024;

function logPanel(runId, name) {
  const pre = el('pre', { class: 'log', 'data-log': name });
  const info = el('span', { class: 'muted' });
  const follow = el('input', { type: 'checkbox' });
  const load = async () => {
    try {
      const { text, partial, total } = await artifactText(runId, name, TAIL_BYTES);
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = partial ? text.slice(text.indexOf('\n') + 1) : text;
      info.textContent = partial ? `last ${size(TAIL_BYTES)} of ${size(total)}` : size(total);
      if (atBottom || follow.checked) pre.scrollTop = pre.scrollHeight;
    } catch (err) { info.textContent = String(err.message); }
  };
  follow.addEventListener('change', () => {
    stopFollow();
    if (follow.checked) state.followTimer = setInterval(load, 2000);
  });
  load();
  return el('div', { class: 'log-panel' }, el('div', { class: 'toolbar' }, el('h3', {}, name), info, el('label', {}, follow, ' follow')), pre);
}

function stopFollow() {
  if (state.followTimer) { clearInterval(state.followTimer); state.followTimer = null; }
}

async function exportRun(id, button, out) {
  out.replaceChildren('exporting…');
  button.disabled = true;
  try {
    const made = await api(`/api/runs/${encodeURIComponent(id)}/export`, { method: 'POST', json: {} });
    out.replaceChildren('bundle ready: ',
      el('a', { href: `/api/exports/${encodeURIComponent(made.file)}`, download: made.file }, made.file),
      ` (${size(made.size)}, ${made.files} files, secrets redacted)`);
  } catch (err) {
    out.replaceChildren(el('span', { class: 'error' }, `export failed: ${err.message}`));
  } finally {
    button.disabled = false;
  }
}

// ---------- compare ----------

async function renderCompare(ids) {
  stopFollow();
  if (ids.length < 2) {
    state.media = null;
    view.replaceChildren(el('section', { class: 'panel' }, el('h1', {}, 'Compare runs'),
      el('p', {}, 'Select two to four runs on the runs list (the “compare” boxes), then press “Compare”.')));
    return;
  }
  const runs = await Promise.all(ids.slice(0, 4).map((id) => api(`/api/runs/${encodeURIComponent(id)}`)));
  const withVideo = runs.filter((r) => r.video);
  const players = withVideo.map((r) => player(artifactUrl(r.id, r.video), `${r.title} — ${r.video}`, { frameButtons: false }));
  const parts = [el('h1', {}, `Compare ${runs.length} runs`),
    el('p', { class: 'muted' }, runs.map((r) => r.title).join(' · '))];
  if (players.length >= 2) {
    players.forEach((p) => { p.video.controls = false; });
    const group = syncGroup(players.map((p) => p.video));
    state.media = { toggle: () => group.api.toggle(), seek: (d) => group.api.seek(players[0].video.currentTime + d), step: (n) => group.api.step(n) };
    window.labCompare = group.api; // for the end-to-end test and the console
    parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Videos (synchronised)'), group.bar,
      el('div', { id: 'compare-videos', class: `videos cols-${players.length}` }, players.map((p) => p.node))));
  } else {
    state.media = null;
    parts.push(el('p', { class: 'muted' }, 'Fewer than two of these runs have a video.'));
  }
  const holder = el('div', { id: 'compare-metrics' }, el('p', { class: 'muted' }, 'loading metrics…'));
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Metrics (overlaid)'), holder));
  view.replaceChildren(el('article', { class: 'compare-view' }, parts));
  const withMetrics = runs.map((r, i) => ({ id: r.id, label: r.title, color: COLORS[i % COLORS.length], metrics: (r.metrics || []).slice().sort((a, b) => (a.last === null) - (b.last === null) || a.name.localeCompare(b.name)).map((m) => m.name) }))
    .filter((r) => r.metrics.length);
  holder.replaceChildren(withMetrics.length ? metricsPanel(withMetrics) : el('p', { class: 'muted' }, 'None of these runs has metrics.'));
}

// ---------- jobs (the sandboxed runner) ----------

let jobStream = null;
function closeJobStream() {
  if (jobStream) { jobStream.close(); jobStream = null; }
}

function stateBadge(stateName) {
  const kind = stateName === 'exited' ? 'ok' : stateName === 'running' ? '' : 'warn';
  return el('span', { class: `badge ${kind}` }, stateName);
}

async function renderJobs() {
  stopFollow();
  state.media = null;
  const runner = state.status ? state.status.runner : null;
  const parts = [el('h1', {}, 'Jobs')];
  if (!runner || !runner.enabled) {
    parts.push(el('section', { class: 'panel' }, el('p', {}, 'The runner is disabled. Start the Lab with ',
      el('code', {}, '--enable-runner'), ' and list programs under ', el('code', {}, '[runner] programs'), ' in lab.toml to launch runs here.')));
    view.replaceChildren(el('article', {}, parts));
    return;
  }
  if (!runner.available) {
    parts.push(el('section', { class: 'panel', id: 'runner-unavailable' }, el('h2', {}, 'Runner unavailable'),
      el('p', {}, 'This machine cannot provide every isolation layer a job needs, so the Lab refuses to run jobs rather than run them with less:'),
      el('p', { class: 'error' }, runner.unavailable || 'unknown reason'),
      el('p', { class: 'muted' }, 'See docs/SECURITY.md for the kernel features required.')));
    view.replaceChildren(el('article', {}, parts));
    return;
  }
  const program = el('select', { id: 'job-program', 'aria-label': 'program' }, runner.programs.map((p) => el('option', { value: p }, p)));
  const args = el('textarea', { id: 'job-args', rows: 3, placeholder: 'one argument per line (no shell: $, ;, * stay literal)', spellcheck: 'false' });
  const timeout = el('input', { id: 'job-timeout', type: 'number', min: 1, value: 3600, 'aria-label': 'timeout in seconds' });
  const envBoxes = runner.env_allow.map((name) => el('label', { class: 'env' }, el('input', { type: 'checkbox', value: name }), ' ', name));
  const result = el('p', { id: 'job-result', role: 'status' });
  const submit = el('button', { type: 'submit', class: 'primary', id: 'job-submit', disabled: !runner.programs.length }, 'Start run');
  const form = el('form', { id: 'job-form', class: 'job-form' },
    el('div', { class: 'badges' },
      runner.network_allowed ? el('span', { class: 'badge warn' }, 'network ALLOWED for jobs') : el('span', { class: 'badge ok' }, 'network disabled'),
      ...isolationBadges(runner.isolation)),
    el('label', {}, 'Program ', program),
    el('label', {}, 'Arguments', args),
    envBoxes.length ? el('fieldset', {}, el('legend', {}, 'Environment variables to pass'), envBoxes) : null,
    el('label', {}, 'Timeout (s) ', timeout),
    el('div', { class: 'buttons' }, submit), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    result.textContent = '';
    try {
      const lines = args.value.split('\n');
      if (lines.length && lines[lines.length - 1] === '') lines.pop();
      const made = await api('/api/jobs', { method: 'POST', json: {
        program: program.value,
        args: lines,
        env: envBoxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value),
        timeout_secs: Number(timeout.value) || undefined,
      } });
      location.hash = `#/jobs/${encodeURIComponent(made.id)}`;
    } catch (err) {
      result.replaceChildren(el('span', { class: 'error' }, err.message));
    } finally { submit.disabled = false; }
  });
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'New run'), runner.programs.length ? form : el('p', {}, 'No programs are allowlisted: add them to [runner] programs in lab.toml.')));
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Run a workflow'), workflowForm(runner)));
  const { jobs } = await api('/api/jobs');
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Recent jobs'), jobs.length ? el('table', { id: 'jobs' },
    el('thead', {}, el('tr', {}, el('th', {}, 'job'), el('th', {}, 'program'), el('th', {}, 'state'), el('th', {}, 'started'))),
    el('tbody', {}, jobs.map((j) => el('tr', {},
      el('td', {}, el('a', { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.id)),
      el('td', { class: 'mono' }, [j.program, ...j.args].join(' ')),
      el('td', {}, stateBadge(j.state)),
      el('td', { class: 'muted' }, date(j.created * 1000)))))) : el('p', { class: 'muted' }, 'No jobs yet.')));
  view.replaceChildren(el('article', { class: 'jobs-view' }, parts));
}

function workflowForm(runner) {
  const path = el('input', { id: 'workflow-path', placeholder: '/abs/path/to/workflow.toml (under an allowed root)', autocomplete: 'off' });
  const result = el('div', { id: 'workflow-result', role: 'status' });
  const submit = el('button', { type: 'submit', class: 'primary', id: 'workflow-submit' }, 'Start workflow');
  const start = async (confirm) => {
    result.replaceChildren();
    try {
      const made = await api('/api/jobs', { method: 'POST', json: { workflow: path.value.trim(), confirm_exec_hooks: confirm } });
      location.hash = `#/jobs/${encodeURIComponent(made.id)}`;
    } catch (err) {
      if (err.code === 'exec_hooks_refused' && runner.workflow_exec_allowed && !confirm) {
        const understood = el('input', { type: 'checkbox', id: 'exec-understood' });
        const go = el('button', { type: 'button', class: 'danger', id: 'exec-confirm', disabled: true }, 'Run it, exec hooks included');
        understood.addEventListener('change', () => { go.disabled = !understood.checked; });
        go.addEventListener('click', () => start(true));
        result.replaceChildren(el('div', { class: 'warning', role: 'alert' },
          el('strong', {}, 'This workflow has exec hooks. '),
          'An exec hook runs a program named by the workflow file itself, not one from the Lab\'s allowlist: whoever wrote the file decides what runs (still inside the sandbox: no network unless allowed, writes only to the run directory). ',
          el('span', { class: 'mono' }, err.message),
          el('label', {}, understood, ' I wrote or checked this workflow and want its exec hooks to run'),
          go));
      } else {
        result.replaceChildren(el('p', { class: 'error' }, err.message));
      }
    }
  };
  const form = el('form', { class: 'job-form', id: 'workflow-form' },
    el('p', { class: 'muted' }, runner.workflow_exec_allowed
      ? 'Exec hooks are allowed by the command line; each workflow that has them asks for confirmation.'
      : 'Exec hooks are off (start the Lab with --runner-allow-workflow-exec to allow them); workflows with exec hooks are refused.'),
    el('label', {}, 'Workflow file ', path), el('div', { class: 'buttons' }, submit), result);
  form.addEventListener('submit', (event) => { event.preventDefault(); start(false); });
  return form;
}

async function renderJob(id) {
  stopFollow();
  state.media = null;
  let job = await api(`/api/jobs/${encodeURIComponent(id)}`);
  const stateHolder = el('span', { id: 'job-state' }, stateBadge(job.state));
  const cancel = el('button', { type: 'button', id: 'job-cancel', disabled: job.state !== 'running' }, 'Cancel');
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try { await api(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }); } catch (err) { showError(err); }
  });
  const out = el('pre', { class: 'log', id: 'job-log' });
  const details = el('div', { class: 'meta-grid' });
  const badges = el('div', { class: 'badges', id: 'job-isolation' });
  const fill = () => {
    // The job's own isolation report (none yet while it starts).
    badges.replaceChildren(...(job.isolation ? isolationBadges(job.isolation) : []));
    details.replaceChildren(
      el('div', { class: 'meta-item' }, el('h3', {}, 'job'), valueTree({ program: job.program, args: job.args, env_names: job.env_names, network_allowed: job.network_allowed, exit: job.exit })),
      el('div', { class: 'meta-item' }, el('h3', {}, 'isolation in force'), valueTree(job.isolation)));
  };
  fill();
  view.replaceChildren(el('article', { class: 'job-view' },
    el('header', { class: 'run-head' }, el('div', {}, el('h1', {}, job.id), el('p', { class: 'muted mono' }, [job.program, ...job.args].join(' '))),
      el('div', { class: 'actions' }, stateHolder, cancel, el('a', { href: `#/runs/${encodeURIComponent(job.run_id)}` }, 'open run'))),
    badges,
    el('section', { class: 'panel' }, el('h2', {}, 'Output (redacted, live)'), out),
    el('section', { class: 'panel' }, el('h2', {}, 'Details'), details)));
  closeJobStream();
  const source = new EventSource(`/api/jobs/${encodeURIComponent(id)}/log`);
  jobStream = source;
  const append = (kind) => (event) => {
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.append(el('span', { class: kind }, JSON.parse(event.data)));
    if (atBottom) out.scrollTop = out.scrollHeight;
  };
  source.addEventListener('stdout', append('stdout'));
  source.addEventListener('stderr', append('stderr'));
  source.addEventListener('gap', () => out.append(el('span', { class: 'muted' }, '[older output dropped; see stdout.log]\n')));
  source.addEventListener('end', async () => {
    source.close();
    job = await api(`/api/jobs/${encodeURIComponent(id)}`);
    stateHolder.replaceChildren(stateBadge(job.state));
    cancel.disabled = true;
    fill();
  });
}

// ---------- import dialog ----------

function openImport() {
  const dialog = $('import-dialog');
  const roots = state.status ? state.status.allowed_roots : [];
  $('import-roots').replaceChildren(...(roots.length ? roots.map((r) => el('li', { class: 'mono' }, r)) : [el('li', { class: 'error' }, 'none: start the Lab with --root DIR to allow imports')]));
  $('import-error').textContent = '';
  dialog.showModal();
  $('import-path').focus();
}

async function submitImport(event) {
  event.preventDefault();
  const path = $('import-path').value.trim();
  const id = $('import-id').value.trim();
  const button = $('import-submit');
  button.disabled = true;
  $('import-error').textContent = '';
  try {
    // Already registered (found by the Lab's walk of the roots, or
    // imported before): open it. An id asks for a new import.
    const known = id ? null : await runAt(path);
    const run = known || await api('/api/runs', { method: 'POST', json: id ? { path, id } : { path } });
    $('import-dialog').close();
    $('import-form').reset();
    loadStatus();
    location.hash = `#/runs/${encodeURIComponent(run.id)}`;
  } catch (err) {
    // Found by the Lab's own walk of the roots (or imported before): open
    // it rather than call the import a failure.
    const existing = err.code === 'already_registered' ? await runAt(path) : null;
    if (existing) {
      $('import-dialog').close();
      $('import-form').reset();
      location.hash = `#/runs/${encodeURIComponent(existing.id)}`;
    } else {
      $('import-error').textContent = plainReason(err);
    }
  } finally {
    button.disabled = false;
  }
}

// The registered run whose directory is `path` (as typed, or without a
// trailing slash), looked up by its last component; null when not found.
async function runAt(path) {
  const trimmed = path.replace(/\/+$/, '');
  const name = trimmed.split('/').pop();
  if (!name) return null;
  try {
    const page = await api(`/api/runs?q=${encodeURIComponent(name)}&limit=500`);
    return page.runs.find((r) => r.path === trimmed) || null;
  } catch (_) {
    return null;
  }
}

function plainReason(err) {
  switch (err.code) {
    case 'outside_allowed_roots': return 'Refused: that directory is not inside one of the allowed roots listed above.';
    case 'directory_not_found': return 'There is no directory at that path.';
    case 'not_a_directory': return 'That path is a file, not a directory.';
    case 'path_not_absolute': return 'Give an absolute path, starting with /.';
    case 'already_registered': return `Already imported: ${err.message}.`;
    case 'id_taken': return `That run id is taken: ${err.message}.`;
    case 'invalid_run_id': return 'Run ids use a-z, 0-9 and -, starting with a letter or digit.';
    case 'is_allowed_root': return 'That is an allowed root itself; choose a run directory inside it.';
    default: return err.message;
  }
}

// ---------- router and keyboard ----------

async function route() {
  const hash = location.hash || '#/';
  closeJobStream();
  loadStatus();
  document.querySelectorAll('.nav a').forEach((a) => a.classList.remove('active'));
  try {
    let m;
    if ((m = hash.match(/^#\/runs\/([a-z0-9-]+)$/))) {
      await renderRun(m[1]);
      $('nav-runs').classList.add('active');
    } else if (hash === '#/jobs') {
      await loadStatus();
      await renderJobs();
      $('nav-jobs').classList.add('active');
    } else if ((m = hash.match(/^#\/jobs\/([a-z0-9-]+)$/))) {
      await renderJob(m[1]);
      $('nav-jobs').classList.add('active');
    } else if ((m = hash.match(/^#\/compare\/(.*)$/))) {
      await renderCompare(m[1].split(',').map(decodeURIComponent).filter((s) => /^[a-z0-9][a-z0-9-]{0,63}$/.test(s)));
      $('nav-compare').classList.add('active');
    } else {
      await renderList(true);
      $('nav-runs').classList.add('active');
    }
    view.focus({ preventScroll: true });
  } catch (err) {
    showError(err);
    view.replaceChildren(el('p', { class: 'error' }, String(err.message)));
  }
}

function onKey(event) {
  const target = event.target;
  if (target.closest && target.closest('input, select, textarea, dialog')) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const onList = !location.hash.startsWith('#/runs/') && !location.hash.startsWith('#/compare/') && !location.hash.startsWith('#/jobs');
  const m = state.media;
  switch (event.key) {
    case ' ': if (m) { event.preventDefault(); m.toggle(); } break;
    case 'ArrowLeft': if (m) { event.preventDefault(); m.seek(-5); } break;
    case 'ArrowRight': if (m) { event.preventDefault(); m.seek(5); } break;
    case '[': if (m) m.step(-1); break;
    case ']': if (m) m.step(1); break;
    case 'j': case 'k': {
      const d = event.key === 'j' ? 1 : -1;
      if (onList) {
        state.focus = Math.max(0, Math.min(state.list.runs.length - 1, state.focus + d));
        highlight();
      } else {
        const id = decodeURIComponent((location.hash.match(/^#\/runs\/(.+)$/) || [])[1] || '');
        const i = state.order.indexOf(id);
        const next = state.order[i + d];
        if (i >= 0 && next) location.hash = `#/runs/${encodeURIComponent(next)}`;
      }
      break;
    }
    case 'Enter':
      if (onList && state.list.runs[state.focus]) location.hash = `#/runs/${encodeURIComponent(state.list.runs[state.focus].id)}`;
      break;
    default:
  }
}

$('import-open').addEventListener('click', openImport);
$('signout').addEventListener('click', async () => {
  try { await api('/api/session', { method: 'DELETE' }); } catch (err) { showError(err); return; }
  location.replace('/');
});
$('import-cancel').addEventListener('click', () => $('import-dialog').close());
$('import-form').addEventListener('submit', submitImport);
document.addEventListener('keydown', onKey);
window.addEventListener('hashchange', route);
route();
