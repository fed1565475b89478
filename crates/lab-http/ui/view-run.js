// A run's page: its video and media by step, every metric (charts in
// sections by prefix, single values as numbers), parameters,
// last values, texts, provenance, notes, logs (following while they grow)
// and artifacts, with an export button. j/k open the next or previous run
// of the list last shown.

import { $, el, api, artifactText, artifactFrom, size, date, valueTree } from './dom.js';
import { metricSections } from './chart.js';
import { player, step } from './player.js';
import { stepScrubber } from './media.js';
import { ENDED, rawStatus, shownStatus, provenanceView, jobFacts, isLive } from './facts.js';
import { store, loadStatus } from './store.js';
import { keyHint } from './keys.js';
import { renderMarkdown } from './markdown.js';
import { distributions } from './histogram.js';
import { tablesView } from './datatable.js';

const view = $('view');
// The page of the run on screen (page.js).
let page = null;

export async function enter(current, [id]) {
  page = current;
  page.actions = {
    move: (d) => {
      const i = store.order.indexOf(id);
      const next = store.order[i + d];
      if (i >= 0 && next) location.hash = `#/runs/${encodeURIComponent(next)}`;
    },
  };
  await renderRun(id);
}

const TEXT_META = ['summary.json'];
// Most images without a step shown inline on a run page.
const STILLS_SHOWN = 120;

async function renderRun(id) {
  const mine = page;
  const run = await api(`/api/runs/${encodeURIComponent(id)}`);
  // A run the runner made: its job record (in the data dir) says how.
  // (Opened straight from a link, the status may not be in yet.)
  if (!store.status) await loadStatus();
  const runner = store.status && store.status.runner;
  // Only a job's run has a job (its `job` is the job's id).
  const job = runner && runner.enabled && run.job ? await api(`/api/jobs/${encodeURIComponent(run.job)}`).catch(() => null) : null;
  if (mine.left) return;
  // The artifacts by name, each with the URL the API gave for it.
  const artifacts = new Map(run.artifacts.map((a) => [a.name, a]));
  const section = (title, ...body) => el('section', { class: 'panel' }, el('h2', {}, title), ...body);

  const exportResult = el('span', { id: 'export-result', role: 'status' });
  const exportButton = el('button', { type: 'button', id: 'export' }, 'Export bundle');
  exportButton.addEventListener('click', () => exportRun(run.id, exportButton, exportResult));
  const position = store.order.indexOf(run.id);
  const header = el('header', { class: 'run-head' },
    el('div', {},
      el('h1', { id: 'run-title' }, run.name),
      // The format's own name, when the title says something else (the
      // Hydra overrides, a job's command), and the run's experiment: a
      // link to the list of its runs.
      run.name_raw && run.name_raw !== run.name ? el('p', { class: 'muted', id: 'run-name-raw' }, 'run name: ', el('span', { class: 'mono' }, run.name_raw)) : null,
      run.experiment ? el('p', { id: 'run-experiment' }, 'experiment ',
        el('a', { href: `#/?${new URLSearchParams({ experiment: run.experiment.id })}`, title: `the runs of ${run.experiment.id}` }, run.experiment.name)) : null,
      el('p', { class: 'muted mono', id: 'run-path' }, `${run.id} — ${run.path}`),
      el('div', { class: 'tags' }, (run.tags || []).filter((t) => !t.startsWith('status_raw=')).map((t) => el('span', { class: 'tag' }, t))),
      el('p', { class: 'muted', id: 'run-facts' }, `${run.format} run · created ${date(run.created)}${shownStatus(run) ? ` · ${shownStatus(run)}${rawStatus(run) && rawStatus(run) !== shownStatus(run) ? ` (${rawStatus(run)})` : ''}` : ''} · ${run.artifacts.length} artifacts · ${run.metrics.length} metrics`),
      originFacts(run),
      run.description ? el('div', { id: 'run-description' }, renderMarkdown(run.description)) : null,
      // A run a job wrote beneath its job's run, and the runs a job wrote;
      // an MLflow run's parent and nested runs (its own store's).
      run.parent ? el('p', { class: 'muted', id: 'run-parent' }, run.format === 'mlflow' ? 'Parent run ' : 'Written by the job of run ', el('a', { href: `#/runs/${encodeURIComponent(run.parent)}` }, run.parent)) : null,
      (run.children || []).length ? el('p', { id: 'run-children' }, `${run.job ? 'Runs its job wrote' : 'Child runs'} (${run.children.length}): `,
        ...run.children.flatMap((c, i) => [i ? ', ' : '', el('a', { href: `#/runs/${encodeURIComponent(c.id)}`, title: `${c.format} run ${c.id}` }, c.name)])) : null),
    el('div', { class: 'actions' },
      job ? el('a', { class: 'button', id: 'run-again', href: `#/jobs?again=${encodeURIComponent(job.id)}`, title: 'a New run form filled in from this job' }, 'Run again') : null,
      exportButton, exportResult,
      position >= 0 ? el('span', { class: 'muted' }, `run ${position + 1} of ${store.order.length} (${keyHint('move')})`) : null));

  // Videos logged by step are shown under "Media by step" instead.
  const stepped = new Set((run.media || []).filter((m) => m.step !== null && m.step !== undefined).map((m) => m.name));
  const videos = run.artifacts.filter((a) => a.type.startsWith('video/') && a.url && !stepped.has(a.name));
  const players = videos.map((a) => player(a.url, a.name));
  const first = players[0] && players[0].video;
  page.media = first ? {
    toggle: () => (first.paused ? first.play() : first.pause()),
    seek: (d) => { first.currentTime = Math.max(0, first.currentTime + d); },
    step: (n) => step(first, n),
  } : null;

  const parts = [header];
  const media = [];
  if (players.length) media.push(section('Video', el('div', { id: 'videos', class: 'videos' }, players.map((p) => p.node))));
  const byStep = stepScrubber([run]);
  if (byStep) {
    page.scrubber = byStep.scrubber;
    media.push(section('Media by step', el('div', { id: 'media-by-step' }, byStep)));
  }
  // Every image without a step (an MLflow `artifacts/*.png`, a Lab
  // `images/*.png`, a Sacred plot) inline, loaded as it scrolls into
  // view; a click opens it whole.
  // The first STILLS_SHOWN of them; the rest are in Artifacts.
  const stills = (run.media || []).filter((m) => m.kind === 'image' && (m.step === null || m.step === undefined) && m.url);
  if (stills.length) {
    media.push(section(`Images (${stills.length})`, el('div', { id: 'images', class: 'image-grid' },
      stills.slice(0, STILLS_SHOWN).map((m) => el('figure', { class: 'image-tile' },
        el('a', { href: m.url, target: '_blank', rel: 'noopener', title: `open ${m.name} whole` },
          el('img', { src: m.url, alt: m.name, loading: 'lazy', class: 'media-image' })),
        el('figcaption', { class: 'muted mono' }, m.name)))),
      stills.length > STILLS_SHOWN ? el('p', { class: 'muted' }, `the first ${STILLS_SHOWN} shown; every one is under Artifacts`) : null));
  }

  // Every metric: single values as numbers, the rest charted in sections
  // by prefix, the sections closed remembered per experiment (else per run).
  const metricCount = run.metrics.length;
  // The charts of a run page always follow the files (a run being written
  // gains points; an unchanged series costs a 304); its logs follow when
  // the run looks live.
  const live = isLive(run, job);
  const metrics = metricCount
    ? section(`Metrics (${metricCount})`, el('div', { id: 'metrics' },
      metricSections(run, {
        live: !ENDED.includes(run.status),
        growing: run.status === 'running' || (!!job && job.state === 'running'),
        onPick: (x) => page.scrubber && page.scrubber.seek(x),
        memory: run.experiment ? `experiment:${run.experiment.id}` : `run:${run.id}`,
      })))
    : section('Metrics', el('p', { class: 'muted' }, live ? 'No metrics yet: this run is still being written, and its charts appear when it logs some (reload to see new metric names).' : 'This run has no numeric metrics the Lab can read.'));
  // Beside the media when there are some, so both are in view; else the
  // panels take the width.
  if (media.length) parts.push(el('div', { class: 'run-grid' }, media, metrics));
  else parts.push(metrics);
  // Histograms, as TensorBoard's distributions (histogram.js).
  const dist = distributions(run);
  if (dist) parts.push(section(`Distributions (${run.histograms.length})`, dist));

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
    parts.push(section('Text', el('div', { id: 'texts' }, run.texts.map((t) => el('div', { class: 'meta-item' }, el('h3', {}, `${t.tag} @ step ${t.step}`), renderMarkdown(t.text))))));
  }

  const tables = tablesView(run.tables);
  if (tables) parts.push(section(`Tables (${run.tables.length})`, tables));

  // How the run was made: the Lab's provenance.json (written when its job
  // ended), else, while a job of the runner's runs, what its record says.
  const provHolder = el('div', { id: 'provenance' });
  if (artifacts.has('provenance.json')) parts.push(section('Provenance', provHolder));
  else if (job) {
    provHolder.append(el('p', { class: 'muted' }, 'The Lab writes this run\'s provenance when its job ends; its job record says:'),
      jobFacts(job, 'provenance-isolation'));
    parts.push(section('Provenance', provHolder));
  }

  const notesHolder = el('div', { class: 'notes' });
  if (artifacts.has('notes.md')) parts.push(section('Notes', notesHolder));

  const logNames = ['stdout.log', 'stderr.log'].filter((n) => artifacts.has(n));
  const logs = el('div', { class: 'logs' });
  if (logNames.length) parts.push(section('Logs', logs));

  parts.push(section('Artifacts', el('table', { id: 'artifacts' },
    el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'size'), el('th', {}, 'type'))),
    el('tbody', {}, run.artifacts.map((a) => el('tr', {},
      el('td', {}, a.url ? el('a', { href: a.url, download: a.name.split('/').pop() }, a.name) : a.name),
      el('td', { class: 'num' }, size(a.size)), el('td', { class: 'muted' }, a.type)))))));
  view.replaceChildren(el('article', { class: 'run-view' }, parts));
  // The parent's link says its name once the list's summary of it is in
  // (a cached summary, not a second read of the run).
  if (run.parent) {
    api(`/api/runs?${new URLSearchParams({ q: run.parent, limit: 5 })}`).then((found) => {
      const parent = (found.runs || []).find((r) => r.id === run.parent);
      const link = document.querySelector('#run-parent a');
      if (parent && link && !mine.left) { link.textContent = parent.name; link.title = `${parent.format} run ${parent.id}`; }
    }).catch(() => {});
  }

  // Fill the panels.
  for (const name of TEXT_META.filter((n) => artifacts.has(n) && !['run.toml', 'run.json'].includes(n))) {
    artifactText(artifacts.get(name)).then(({ text }) => {
      let body;
      if (name.endsWith('.json')) {
        try { body = valueTree(JSON.parse(text)); } catch { body = el('pre', {}, text); }
      } else body = el('pre', {}, text);
      metaHolder.append(el('div', { class: 'meta-item' }, el('h3', {}, name), body));
    }).catch(page.showError);
  }
  if (artifacts.has('provenance.json')) {
    artifactText(artifacts.get('provenance.json')).then(({ text }) => {
      let prov;
      try { prov = JSON.parse(text); } catch { provHolder.replaceChildren(el('pre', {}, text)); return; }
      provHolder.replaceChildren(provenanceView(prov, job));
    }).catch(page.showError);
  }
  if (artifacts.has('notes.md')) {
    artifactText(artifacts.get('notes.md')).then(({ text }) => notesHolder.replaceChildren(...markdownish(text))).catch(page.showError);
  }
  for (const name of logNames) logs.append(logPanel(artifacts.get(name), live));
}

// Who and what ran the run, at which commit, for how long (where its
// format says): one line of facts, the commit shortened (whole in its
// title).
function originFacts(run) {
  const facts = [];
  if (run.user) facts.push(el('span', { id: 'run-user' }, `user ${run.user}`));
  if (run.source) facts.push(el('span', { id: 'run-source', class: 'mono' }, `source ${run.source}`));
  if (run.git_commit) facts.push(el('span', { id: 'run-commit', class: 'mono', title: run.git_commit }, `commit ${run.git_commit.slice(0, 10)}`));
  if (typeof run.duration_secs === 'number') facts.push(el('span', { id: 'run-duration' }, `duration ${duration(run.duration_secs)}`));
  if (!facts.length) return null;
  return el('p', { class: 'muted', id: 'run-origin' }, ...facts.flatMap((f, i) => (i ? [' · ', f] : [f])));
}

// Seconds as `1h 02m 03s`, `4m 05s`, `6s`.
function duration(secs) {
  const s = Math.max(0, Math.round(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  if (h) return `${h}h ${pad(m)}m ${pad(s % 60)}s`;
  if (m) return `${m}m ${pad(s % 60)}s`;
  return `${s}s`;
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

// `artifact`: the log's entry in the run's `artifacts` (name and url).
function logPanel(artifact, live) {
  const name = artifact.name;
  const pre = el('pre', { class: 'log', 'data-log': name });
  const info = el('span', { class: 'muted' });
  const follow = el('input', { type: 'checkbox', checked: live });
  let total = 0;
  const atBottom = () => pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  // The last 64 KiB, then (following) only what was appended since, by
  // Range from the size last seen: a growing log costs its new bytes.
  const load = async () => {
    try {
      const { text, partial, total: now } = await artifactText(artifact, TAIL_BYTES);
      const bottom = atBottom();
      pre.textContent = partial ? text.slice(text.indexOf('\n') + 1) : text;
      total = now;
      info.textContent = partial ? `last ${size(TAIL_BYTES)} of ${size(total)}` : size(total);
      if (bottom || follow.checked) pre.scrollTop = pre.scrollHeight;
    } catch (err) { info.textContent = String(err.message); }
  };
  const more = async () => {
    try {
      const got = await artifactFrom(artifact, total);
      if (got.shrunk) { await load(); return; }
      if (!got.text) return;
      const bottom = atBottom();
      pre.append(got.text);
      total = got.total;
      info.textContent = `${size(total)} (following)`;
      if (bottom || follow.checked) pre.scrollTop = pre.scrollHeight;
    } catch (err) { info.textContent = String(err.message); }
  };
  let timer = null;
  const start = () => {
    if (timer) { page.stop(timer); timer = null; }
    if (follow.checked) timer = page.every(more, 2000);
  };
  follow.addEventListener('change', start);
  load().then(start);
  return el('div', { class: 'log-panel' }, el('div', { class: 'toolbar' }, el('h3', {}, name), info, el('label', {}, follow, ' follow')), pre);
}

async function exportRun(id, button, out) {
  out.replaceChildren('exporting…');
  button.disabled = true;
  try {
    const made = await api(`/api/runs/${encodeURIComponent(id)}/export`, { method: 'POST', json: {} });
    out.replaceChildren('bundle ready: ',
      made.url ? el('a', { href: made.url, download: made.file }, made.file) : made.file,
      ` (${size(made.size)}, ${made.files} files, secrets redacted)`);
  } catch (err) {
    out.replaceChildren(el('span', { class: 'error' }, `export failed: ${err.message}`));
  } finally {
    button.disabled = false;
  }
}
