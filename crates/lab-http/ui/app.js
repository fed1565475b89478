// Lab UI: runs list, run page, compare, import, status strip, keyboard.
// Plain ES modules, no build step. Nothing a run wrote is ever inserted as
// HTML: names, notes, logs and provenance are text nodes. Every URL an
// element loads (a video, an image, a download, a job's log stream) is one
// the API gave (`url`, `video_url`, `thumbnail_url`, `log_url`: signed for
// this session, SPEC §4); none is built here, and without one the element
// is not shown.

import { $, el, api, base, artifactText, artifactFrom, size, date, showError, valueTree, checkSession, pref, setPref } from './dom.js';

// Loaded from a login link while already signed in: the key leaves the
// address bar and history at once.
if (location.hash.startsWith('#key=')) history.replaceState(null, '', location.pathname + location.search);
// Media that fails to load (a 401 after a restart, say) is checked.
document.addEventListener('error', (event) => {
  if (event.target instanceof HTMLMediaElement || event.target instanceof HTMLImageElement) checkSession();
}, true);
import { metricPanels, COLORS } from './chart.js';
import { player, step, syncGroup } from './player.js';
import { stepScrubber } from './media.js';
import { runsTable, columnPicker, chosenColumns } from './table.js';
import { parseArgv, quoteArgv } from './argv.js';

// The run statuses (SPEC §4) that say a run ended.
const ENDED = ['finished', 'failed', 'crashed', 'killed'];

// The raw status word a run's format or job gave (`status_raw=…`), shown
// beside the status rather than as a tag.
const rawStatus = (run) => ((run.tags || []).find((t) => t.startsWith('status_raw=')) || '').slice('status_raw='.length);

/// Most runs compared at once.
const MAX_COMPARE = 20;

const view = $('view');
const state = {
  status: null,
  list: { q: '', tag: '', video: false, format: '', sort: 'created:desc', runs: [], cursor: null, total: 0 },
  selected: new Set(),
  order: [],        // run ids in the order last listed (for j/k on a run page)
  focus: 0,         // focused card on the list
  media: null,      // what space/arrows/[ ] act on: { toggle, seek, step, time }
  scrubber: null,   // what , and . step: the media step scrubber on the page
  followTimers: new Set(), // the log panels following their files
  view: pref('list-view', 'cards'), // cards or table, remembered
  columns: null,    // the available columns (/api/columns), once asked
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
// A run's status as shown: one of the API's words, `unknown` left unsaid.
function shownStatus(run) {
  return run.status && run.status !== 'unknown' ? run.status : null;
}

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
  // The cgroup limits as the kernel holds them; null: none configured.
  const lim = iso.limits;
  if (lim && typeof lim === 'object') {
    const parts = [];
    if (lim.memory_max != null) parts.push(`memory ${size(lim.memory_max)}`);
    if (lim.pids_max != null) parts.push(`${lim.pids_max} processes`);
    if (lim.cpu_max != null) parts.push(`${lim.cpu_max} CPU`);
    out.push(badge(`limits (cgroup ${lim.version}): ${parts.join(', ')}`, 'ok', JSON.stringify(lim)));
  } else if (lim === null) {
    out.push(badge('no memory, process or CPU limit', '', 'set [runner] memory_max, pids_max, cpu_max in lab.toml'));
  }
  return out;
}

// ---------- provenance and job facts, for people ----------
// The Lab's provenance.json (lab-runner's `run_steps`) and a job record
// (GET /api/jobs/{id}) as facts a person reads: local ISO times, a
// duration, the program as found and what it resolved to, the command
// line quoted, the exit in words, and the isolation report as one line
// that opens to the whole report. Text nodes only (dom.js `el`).

const pad2 = (n) => String(n).padStart(2, '0');

// A time as ISO 8601 in the browser's zone, offset included
// (`2026-12-07 05:45:01 +01:00`); a Unix time in seconds or a date
// string; null for anything else.
function localTime(value) {
  const d = typeof value === 'number' ? new Date(value * 1000) : typeof value === 'string' ? new Date(value) : null;
  if (!d || Number.isNaN(d.getTime())) return null;
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? '-' : '+'}${pad2(Math.floor(Math.abs(off) / 60))}:${pad2(Math.abs(off) % 60)}`;
  const day = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  const clock = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  return el('time', { datetime: `${day}T${clock}${zone}`, title: `local time; UTC ${d.toISOString()}${typeof value === 'number' ? ` (Unix ${value})` : ''}` },
    `${day} ${clock} `, el('span', { class: 'muted' }, zone));
}

// Seconds as a person says them: `under 1 s` (0: times recorded in
// whole seconds), `0.4 s`, `12 s`, `12.3 s`,
// `4 min 05 s`, `10 min`, `2 h 03 min`, `3 d 04 h`.
function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return null;
  if (seconds === 0) return 'under 1 s'; // whole seconds apart: the same second
  if (seconds < 0.05) return 'under 0.1 s';
  if (seconds < 59.95) return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${pad2(s % 60)} s` : `${s / 60} min`;
  if (s < 86400) return s % 3600 ? `${Math.floor(s / 3600)} h ${pad2(Math.floor((s % 3600) / 60))} min` : `${s / 3600} h`;
  return `${Math.floor(s / 86400)} d ${pad2(Math.floor((s % 86400) / 3600))} h`;
}

// Seconds between two times (Unix seconds or date strings), or null.
function secondsBetween(from, to) {
  const at = (v) => (typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) / 1000 : NaN);
  const d = at(to) - at(from);
  return Number.isFinite(d) ? d : null;
}

const SIGNALS = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ' };

// An exit as provenance and job records write it (`Exit::to_json`), in
// words; null when there is none yet.
function exitWords(exit) {
  if (!exit || typeof exit !== 'object') return null;
  if ('code' in exit) return exit.code === 0 ? 'exited with code 0 (success)' : `exited with code ${exit.code} (failure)`;
  if ('signal' in exit) return `killed by signal ${exit.signal}${SIGNALS[exit.signal] ? ` (${SIGNALS[exit.signal]})` : ''}`;
  if (exit.timed_out) return 'killed at its time limit';
  if (exit.cancelled) return 'cancelled';
  if (exit.oom) return 'killed for want of memory (over its memory limit)';
  if (exit.refused) return `refused before it ran: ${exit.refused.layer} could not be set up (${exit.refused.error})`;
  return JSON.stringify(exit);
}

// The job state an exit means (as lab-runner's `JobState::of_recorded_exit`).
function stateOfExit(exit) {
  if (!exit || typeof exit !== 'object') return null;
  if ('code' in exit) return exit.code === 0 ? 'finished' : 'failed';
  if ('signal' in exit) return 'killed';
  if (exit.timed_out) return 'timeout';
  if (exit.cancelled) return 'cancelled';
  if (exit.oom) return 'oom';
  if (exit.refused) return 'refused';
  return null;
}

// The cgroup limits a report holds: null is none configured; absent, a
// report from before limits were recorded.
function limitsWords(lim) {
  if (lim === undefined) return el('span', { class: 'muted' }, 'not recorded');
  if (!lim || typeof lim !== 'object') return 'none (no memory, process or CPU limit)';
  const parts = [];
  if (lim.memory_max != null) parts.push(`memory ${size(lim.memory_max)}`);
  if (lim.pids_max != null) parts.push(`${lim.pids_max} processes`);
  if (lim.cpu_max != null) parts.push(`${lim.cpu_max} CPU${lim.cpu_max === 1 ? '' : 's'}`);
  return [parts.join(', ') || 'none', el('span', { class: 'muted' }, ` (cgroup ${lim.version})`)];
}

// An isolation report in one line: which layers were in force.
function isolationLine(iso) {
  if (iso === null || iso === undefined) return { text: 'no isolation report yet', kind: '' };
  if (typeof iso !== 'object') return { text: 'isolation unknown', kind: 'bad' };
  if (iso.refused) return { text: `refused: ${iso.refused.layer} could not be set up, so nothing ran (${iso.refused.error})`, kind: 'bad' };
  const names = ['user', 'mount', 'pid', 'network'];
  const own = names.filter((n) => iso[`${n}_namespace`]);
  const ll = iso.landlock_filesystem;
  const landlock = !!ll && ll.enforced === 'fully';
  const parts = [own.length === names.length ? 'own namespaces' : own.length ? `own ${own.join(', ')} namespaces` : 'no namespaces'];
  parts.push(landlock ? `Landlock ABI ${ll.abi}` : ll && ll.enforced ? `Landlock ${ll.enforced}` : 'no Landlock');
  parts.push(iso.seccomp ? 'seccomp' : 'no seccomp');
  if (iso.network) parts.push(iso.network_namespace ? 'network via pasta' : 'host network');
  else parts.push(iso.network_namespace ? 'no network' : 'network not isolated');
  if (iso.limits && typeof iso.limits === 'object') parts.push(`limits cgroup ${iso.limits.version}`);
  else if (iso.limits === null) parts.push('no limits');
  const whole = own.length === names.length && landlock && !!iso.seccomp;
  return { text: `${whole ? 'sandboxed' : 'partly sandboxed'}: ${parts.join(', ')}`, kind: whole ? 'ok' : 'bad' };
}

// The one-line summary, opening (a <details>, closed) to the full report.
function isolationDetails(iso, id) {
  const line = isolationLine(iso);
  if (iso === null || iso === undefined || typeof iso !== 'object') return el('span', { class: `isolation-line ${line.kind}`, id }, line.text);
  return el('details', { class: 'isolation', id },
    el('summary', {}, el('span', { class: `isolation-line ${line.kind}` }, line.text), el('span', { class: 'muted' }, ' — full report')),
    valueTree(iso));
}

// A definition list of [label, value] rows (rows without a value left out).
function facts(rows, attrs = {}) {
  const kept = rows.filter(([, v]) => v !== null && v !== undefined && v !== false && !(Array.isArray(v) && !v.length));
  return el('dl', { class: 'facts', ...attrs }, kept.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

const code = (text, attrs = {}) => el('code', attrs, text);
const words = (list) => (Array.isArray(list) && list.length ? code(list.join(', ')) : el('span', { class: 'muted' }, 'none'));

// A SHA-256, shortened, the whole of it in its title.
function digest(hex) {
  return typeof hex === 'string' && hex ? el('code', { class: 'digest', title: `sha256 ${hex}` }, `sha256 ${hex.slice(0, 12)}…`) : null;
}

// The program as found on the PATH, what it resolved to, its digest.
function programFacts(found, resolved, sha256, named) {
  if (!found && !named) return null;
  return [code(found || named),
    resolved && resolved !== found ? [el('span', { class: 'muted' }, ' → '), code(resolved, { title: 'its canonical path (what the allowlist matched)' })] : null,
    named && found && named !== found && !found.endsWith(`/${named}`) ? el('span', { class: 'muted' }, ` (asked for as ${named})`) : null,
    sha256 ? [' ', digest(sha256)] : null];
}

function gitWords(git) {
  if (git === undefined) return null;
  if (!git || typeof git !== 'object') return el('span', { class: 'muted' }, 'not a git work tree');
  const commit = typeof git.commit === 'string' ? code(git.commit.slice(0, 12), { title: git.commit }) : el('span', { class: 'muted' }, 'no commit yet');
  const dirty = git.dirty === true ? 'uncommitted changes' : git.dirty === false ? 'clean' : 'uncommitted changes not checked';
  return [commit, git.branch ? [' on ', code(git.branch)] : ' (detached HEAD)', el('span', { class: 'muted' }, ` · ${dirty}`),
    git.work_tree ? el('span', { class: 'muted' }, [' · ', code(git.work_tree)]) : null];
}

function network(allowed) {
  if (typeof allowed !== 'boolean') return null;
  return allowed ? el('span', { class: 'badge warn' }, 'on: outbound IP allowed') : el('span', { class: 'badge ok' }, 'off');
}

// The state and exit of a job in words (the state from its record when
// there is one, else the one its exit means).
function outcome(stateName, exit) {
  const shown = stateName || stateOfExit(exit);
  const said = exitWords(exit);
  if (!shown && !said) return null;
  return [shown ? stateBadge(shown) : null, said ? ` ${said}` : ''];
}

// Start, end and how long, from Unix seconds (or date strings).
function timeRows(started, ended, running) {
  const span = secondsBetween(started, ended);
  return [
    ['started', localTime(started)],
    ['ended', ended == null ? (running ? el('span', { class: 'muted' }, 'still running') : null) : localTime(ended)],
    ['duration', span !== null ? el('span', { class: 'duration' }, duration(span))
      : running && typeof started === 'number' ? el('span', { class: 'duration' }, `${duration(Date.now() / 1000 - started)} so far`) : null],
  ];
}

const LAB_KEYS = new Set(['version', 'lab_version', 'program', 'path', 'resolved_path', 'sha256', 'argv', 'steps', 'cwd', 'git', 'job_dir',
  'env_names', 'network_allowed', 'started', 'ended', 'exit', 'exit_code', 'isolation']);

// A run's provenance.json for people: the Lab's own record of a job (with
// `lab_version`), or one a run wrote itself, shown by the keys it shares.
function provenanceView(prov, job) {
  if (!prov || typeof prov !== 'object' || Array.isArray(prov)) return valueTree(prov);
  const labs = typeof prov.lab_version === 'string';
  const exit = prov.exit ?? (typeof prov.exit_code === 'number' ? { code: prov.exit_code } : undefined);
  const steps = Array.isArray(prov.steps) && prov.steps.length > 1 ? prov.steps : [];
  const iso = prov.isolation;
  const rows = [
    ['state', outcome(job && job.state, exit)],
    ...timeRows(prov.started, prov.ended, job && job.state === 'running'),
    ['program', programFacts(prov.path, prov.resolved_path, prov.sha256, prov.program)],
    ['command', Array.isArray(prov.argv) ? code(quoteArgv(prov.argv), { class: 'argv' }) : null],
    ['steps', steps.length ? el('ol', { class: 'steps' }, steps.map((s) => el('li', {},
      code(quoteArgv(s.argv || []), { class: 'argv' }), s.exec_hook ? el('span', { class: 'badge warn' }, 'exec hook') : null,
      el('span', { class: 'muted' }, ` ${exitWords(s.exit) || 'did not run'}`), s.sha256 ? [' ', digest(s.sha256)] : null))) : null],
    ['working directory', prov.cwd ? code(prov.cwd) : labs ? el('span', { class: 'muted' }, `none: it ran in its run's ${prov.job_dir || 'job'}/ directory`) : null],
    ['git', gitWords(prov.git)],
    ['network', network(prov.network_allowed)],
    ['limits', iso && typeof iso === 'object' && !iso.refused ? limitsWords(iso.limits) : null],
    ['environment', 'env_names' in prov ? words(prov.env_names) : null],
    ['isolation', iso !== undefined ? isolationDetails(iso, 'provenance-isolation') : null],
    ['recorded by', labs ? `the Lab ${prov.lab_version} (provenance version ${prov.version})` : el('span', { class: 'muted' }, 'the run itself, not the Lab: it says what the run wrote')],
  ];
  const rest = Object.fromEntries(Object.entries(prov).filter(([k]) => !LAB_KEYS.has(k)));
  if (!labs && Object.keys(rest).length) rows.push(['other fields', valueTree(rest)]);
  return facts(rows, { id: 'provenance-facts' });
}

// A job's record (GET /api/jobs/{id}) for people; with its isolation
// report (as a <details> of that id) when `isolationId` is given.
function jobFacts(job, isolationId) {
  const running = job.state === 'running' || job.state === 'queued';
  return facts([
    ['state', outcome(job.state, job.exit)],
    ...timeRows(job.created, job.ended, running),
    ['program', programFacts(job.exec_path, null, null, job.program)],
    ['arguments', job.args.length ? code(quoteArgv(job.args), { class: 'argv' }) : el('span', { class: 'muted' }, 'none')],
    ['working directory', job.relaunch && job.relaunch.cwd ? code(job.relaunch.cwd) : null],
    ['workflow', job.relaunch && job.relaunch.workflow ? code(job.relaunch.workflow) : null],
    ['time limit', job.relaunch && job.relaunch.timeout_secs ? duration(job.relaunch.timeout_secs) : null],
    ['network', network(job.network_allowed)],
    ['limits', job.isolation && typeof job.isolation === 'object' && !job.isolation.refused ? limitsWords(job.isolation.limits) : null],
    ['environment', words(job.env_names)],
    ['backend', job.backend && job.backend !== 'local' ? [code(job.backend), job.slurm_job_id ? ` job ${job.slurm_job_id}` : '', job.node ? ` on ${job.node}` : '', job.reason ? ` (${job.reason})` : ''] : null],
    ['isolation', isolationId ? isolationDetails(job.isolation, isolationId) : null],
  ], { id: 'job-facts' });
}

// ---------- runs list ----------

function listQuery(cursor, { limit = 100, fields = [] } = {}) {
  const at = state.list.sort.lastIndexOf(':');
  const [sort, order] = [state.list.sort.slice(0, at), state.list.sort.slice(at + 1)];
  const p = new URLSearchParams({ limit: String(limit), sort, order });
  if (fields.length) p.set('fields', fields.join(','));
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
  if (run.thumbnail_url) return el('img', { src: run.thumbnail_url, alt: '', loading: 'lazy', class: 'thumb' });
  if (run.video_url) {
    // First frame: only metadata and the first frame are fetched, by Range.
    const v = el('video', { muted: true, preload: 'metadata', class: 'thumb', 'aria-hidden': 'true' });
    v.muted = true;
    lazyVideos.observe(v);
    v.dataset.src = `${run.video_url}#t=0.1`;
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
      shownStatus(run) ? el('span', { class: 'badge' }, shownStatus(run)) : null,
      run.has_video ? el('span', { class: 'badge' }, 'video') : null,
      run.error_count ? el('span', { class: 'badge warn', title: 'parts of this run could not be read' }, `${run.error_count} error${run.error_count > 1 ? 's' : ''}`) : null,
      run.available === false ? el('span', { class: 'badge warn', title: run.unavailable_reason || '' }, 'unavailable') : null),
    el('div', { class: 'tags' }, (run.tags || []).map((t) => el('button', { type: 'button', class: 'tag', onclick: () => { state.list.tag = t; renderList(true); } }, t))),
    el('label', { class: 'pick' }, checkbox, ' compare'));
  return item;
}

function updateCompareButton() {
  const button = $('compare-selected');
  if (!button) return;
  const n = state.selected.size;
  button.disabled = n < 2 || n > MAX_COMPARE;
  button.textContent = n > MAX_COMPARE ? `${n} selected: compare takes ${MAX_COMPARE} at most` : n ? `Compare ${n} selected` : `Compare (select 2–${MAX_COMPARE})`;
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
  const sorts = [['created:desc', 'newest first'], ['created:asc', 'oldest first'], ['name:asc', 'name A–Z'], ['name:desc', 'name Z–A'], ['imported:desc', 'recently imported']];
  // A sort chosen by a table column shows as itself.
  if (!sorts.some(([v]) => v === state.list.sort)) sorts.push([state.list.sort, state.list.sort.replace(/:(asc|desc)$/, (_, o) => (o === 'asc' ? ' ▲' : ' ▼'))]);
  const sort = el('select', { id: 'sort', 'aria-label': 'sort' },
    sorts.map(([v, t]) => el('option', { value: v, selected: v === state.list.sort }, t)));
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
  const viewToggle = el('div', { class: 'segmented', role: 'group', 'aria-label': 'list view' },
    ['cards', 'table'].map((v) => {
      const b = el('button', { type: 'button', id: `view-${v}`, 'aria-pressed': String(state.view === v), class: state.view === v ? 'on' : '' }, v === 'cards' ? 'Cards' : 'Table');
      b.addEventListener('click', () => { if (state.view !== v) { state.view = v; setPref('list-view', v); renderList(true); } });
      return b;
    }));
  if (state.view === 'table') {
    await renderTable({ search, sort, format, video, compare, tagChip, viewToggle });
    return;
  }
  let failed = null;
  try {
    if (reset) await fetchRuns(true);
  } catch (err) { failed = err; showError(err); }
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
      el('div', { class: 'toolbar' }, viewToggle, search, el('label', {}, 'Sort ', sort), format, el('label', {}, video, ' has video'), tagChip, count, el('span', { class: 'grow' }), compare),
      warnings(),
      state.list.runs.length ? list : emptyList(failed),
      more));
  updateCompareButton();
  state.focus = Math.min(state.focus, Math.max(0, state.list.runs.length - 1));
  highlight();
}

// What an empty list says: why, and what to do.
function emptyList(failed) {
  if (failed) return el('p', { class: 'empty error' }, `The runs could not be listed: ${failed.message}. Reload the page; if it persists, see the terminal running lab serve.`);
  if (state.list.q || state.list.tag || state.list.format || state.list.video) return el('p', { class: 'empty' }, 'No run matches these filters. Clear the search box, the tag or the format to see every run.');
  return el('p', { class: 'empty' }, 'No runs yet. Use “Import…”, or start the Lab with --root DIR pointing at your experiments.');
}

// The table view: the toolbar of the list, a column picker, and the
// virtual table over every run that matches.
async function renderTable({ search, sort, format, video, compare, tagChip, viewToggle }) {
  const holder = el('div', { class: 'table-holder' }, el('p', { class: 'muted' }, 'Loading runs…'));
  const count = el('span', { class: 'muted', id: 'run-count' });
  const picker = el('span', { id: 'column-picker' });
  view.replaceChildren(el('section', { class: 'list-view' },
    el('div', { class: 'toolbar' }, viewToggle, search, el('label', {}, 'Sort ', sort), format, el('label', {}, video, ' has video'), tagChip, picker, count, el('span', { class: 'grow' }), compare),
    warnings(), holder));
  updateCompareButton();
  try {
    if (!state.columns) state.columns = await api('/api/columns');
    const draw = async (columns) => {
      const first = await api(listQuery(null, { limit: 500, fields: columns }));
      state.list.total = first.total;
      state.order = first.runs.map((r) => r.id);
      count.textContent = `${first.total.toLocaleString()} runs`;
      if (!first.total) { holder.replaceChildren(emptyList(null)); return; }
      holder.replaceChildren(runsTable({
        query: (offset, limit) => listQuery(String(offset), { limit, fields: columns }),
        columns,
        total: first.total,
        first: first.runs,
        sort: state.list.sort,
        onSort: (key) => {
          const at = state.list.sort.lastIndexOf(':');
          const [was, order] = [state.list.sort.slice(0, at), state.list.sort.slice(at + 1)];
          state.list.sort = `${key}:${was === key && order === 'asc' ? 'desc' : was === key ? 'asc' : key === 'name' ? 'asc' : 'desc'}`;
          renderList(true);
        },
        selected: state.selected,
        onSelect: updateCompareButton,
      }));
    };
    const columns = chosenColumns(state.columns);
    picker.replaceChildren(columnPicker(state.columns, columns, (next) => draw(next).catch(showError)));
    await draw(columns);
  } catch (err) {
    showError(err);
    holder.replaceChildren(emptyList(err));
  }
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
  state.scrubber = null;
  const run = await api(`/api/runs/${encodeURIComponent(id)}`);
  // A run the runner made: its job record (in the data dir) says how.
  // (Opened straight from a link, the status may not be in yet.)
  if (!state.status) await loadStatus();
  const runner = state.status && state.status.runner;
  // Only a job's run has a job (its `job` is the job's id).
  const job = runner && runner.enabled && run.job ? await api(`/api/jobs/${encodeURIComponent(run.job)}`).catch(() => null) : null;
  // The artifacts by name, each with the URL the API gave for it.
  const artifacts = new Map(run.artifacts.map((a) => [a.name, a]));
  const section = (title, ...body) => el('section', { class: 'panel' }, el('h2', {}, title), ...body);

  const exportResult = el('span', { id: 'export-result', role: 'status' });
  const exportButton = el('button', { type: 'button', id: 'export' }, 'Export bundle');
  exportButton.addEventListener('click', () => exportRun(run.id, exportButton, exportResult));
  const position = state.order.indexOf(run.id);
  const header = el('header', { class: 'run-head' },
    el('div', {},
      el('h1', { id: 'run-title' }, run.title),
      el('p', { class: 'muted mono', id: 'run-path' }, `${run.id} — ${run.path}`),
      el('div', { class: 'tags' }, (run.tags || []).filter((t) => !t.startsWith('status_raw=')).map((t) => el('span', { class: 'tag' }, t))),
      el('p', { class: 'muted', id: 'run-facts' }, `${run.format} run · created ${date(run.created)}${shownStatus(run) ? ` · ${shownStatus(run)}${rawStatus(run) && rawStatus(run) !== shownStatus(run) ? ` (${rawStatus(run)})` : ''}` : ''} · ${run.artifacts.length} artifacts · ${run.metrics.length} metrics`),
      run.description ? el('p', { id: 'run-description' }, run.description) : null,
      // A run a job wrote beneath its job's run, and the runs a job wrote.
      run.parent ? el('p', { class: 'muted', id: 'run-parent' }, 'Written by the job of run ', el('a', { href: `#/runs/${encodeURIComponent(run.parent)}` }, run.parent)) : null,
      (run.children || []).length ? el('p', { id: 'run-children' }, `Runs its job wrote (${run.children.length}): `,
        ...run.children.flatMap((c, i) => [i ? ', ' : '', el('a', { href: `#/runs/${encodeURIComponent(c.id)}`, title: `${c.format} run ${c.id}` }, c.title)])) : null),
    el('div', { class: 'actions' },
      job ? el('a', { class: 'button', id: 'run-again', href: `#/jobs?again=${encodeURIComponent(job.id)}`, title: 'a New run form filled in from this job' }, 'Run again') : null,
      exportButton, exportResult,
      position >= 0 ? el('span', { class: 'muted' }, `run ${position + 1} of ${state.order.length} (j/k)`) : null));

  // Videos logged by step are shown under "Media by step" instead.
  const stepped = new Set((run.media || []).filter((m) => m.step !== null && m.step !== undefined).map((m) => m.name));
  const videos = run.artifacts.filter((a) => a.type.startsWith('video/') && a.url && !stepped.has(a.name));
  const players = videos.map((a) => player(a.url, a.name));
  const first = players[0] && players[0].video;
  state.media = first ? {
    toggle: () => (first.paused ? first.play() : first.pause()),
    seek: (d) => { first.currentTime = Math.max(0, first.currentTime + d); },
    step: (n) => step(first, n),
  } : null;

  const parts = [header];
  const media = [];
  if (players.length) media.push(section('Video', el('div', { id: 'videos', class: 'videos' }, players.map((p) => p.node))));
  const byStep = stepScrubber([run]);
  if (byStep) {
    state.scrubber = byStep.scrubber;
    media.push(section('Media by step', el('div', { id: 'media-by-step' }, byStep)));
  }

  // Metrics with a finite last value first: the panels open on ones that draw.
  const metricNames = byValue(run.metrics);
  // The charts of a run page always follow the files (a run being written
  // gains points; an unchanged series costs a 304); its logs follow when
  // the run looks live.
  const live = isLive(run, job);
  const metrics = metricNames.length
    ? section(`Metrics (${metricNames.length})`, el('div', { id: 'metrics' },
      metricPanels([{ id: run.id, label: run.title, color: COLORS[0], metrics: metricNames }], { live: !ENDED.includes(run.status), count: media.length ? 2 : 4, onPick: (x) => state.scrubber && state.scrubber.seek(x) })))
    : section('Metrics', el('p', { class: 'muted' }, live ? 'No metrics yet: this run is still being written, and its charts appear when it logs some (reload to see new metric names).' : 'This run has no numeric metrics the Lab can read.'));
  // Beside the media when there are some, so both are in view; else the
  // panels take the width.
  if (media.length) parts.push(el('div', { class: 'run-grid' }, media, metrics));
  else parts.push(metrics);

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

  // Fill the panels.
  for (const name of TEXT_META.filter((n) => artifacts.has(n) && !['run.toml', 'run.json'].includes(n))) {
    artifactText(artifacts.get(name)).then(({ text }) => {
      let body;
      if (name.endsWith('.json')) {
        try { body = valueTree(JSON.parse(text)); } catch { body = el('pre', {}, text); }
      } else body = el('pre', {}, text);
      metaHolder.append(el('div', { class: 'meta-item' }, el('h3', {}, name), body));
    }).catch(showError);
  }
  if (artifacts.has('provenance.json')) {
    artifactText(artifacts.get('provenance.json')).then(({ text }) => {
      let prov;
      try { prov = JSON.parse(text); } catch { provHolder.replaceChildren(el('pre', {}, text)); return; }
      provHolder.replaceChildren(provenanceView(prov, job));
    }).catch(showError);
  }
  if (artifacts.has('notes.md')) {
    artifactText(artifacts.get('notes.md')).then(({ text }) => notesHolder.replaceChildren(...markdownish(text))).catch(showError);
  }
  for (const name of logNames) logs.append(logPanel(artifacts.get(name), live));
}

// Metric names with a finite last value first, then by name.
const byValue = (ms) => ms.slice().sort((a, b) => (a.last === null) - (b.last === null) || a.name.localeCompare(b.name)).map((m) => m.name);

// Whether a run is likely still being written: its format or job says it
// runs, or a file of it changed in the last two minutes.
function isLive(run, job) {
  if (job && job.state === 'running') return true;
  if (run.status === 'running') return true;
  // A run whose format or job says it ended is not being written.
  if (ENDED.includes(run.status)) return false;
  const newest = Math.max(0, ...run.artifacts.map((a) => a.modified || 0));
  return Date.now() / 1000 - newest < 120;
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
    if (timer) { clearInterval(timer); state.followTimers.delete(timer); timer = null; }
    if (follow.checked) { timer = setInterval(more, 2000); state.followTimers.add(timer); }
  };
  follow.addEventListener('change', start);
  load().then(start);
  return el('div', { class: 'log-panel' }, el('div', { class: 'toolbar' }, el('h3', {}, name), info, el('label', {}, follow, ' follow')), pre);
}

function stopFollow() {
  for (const timer of state.followTimers) clearInterval(timer);
  state.followTimers.clear();
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

// ---------- compare ----------

async function renderCompare(ids) {
  stopFollow();
  state.scrubber = null;
  if (ids.length < 2) {
    state.media = null;
    view.replaceChildren(el('section', { class: 'panel' }, el('h1', {}, 'Compare runs'),
      el('p', {}, `Select two to ${MAX_COMPARE} runs on the runs list (the “compare” boxes on cards, or the first column of the table), then press “Compare”.`)));
    return;
  }
  view.replaceChildren(el('p', { class: 'muted' }, `Loading ${Math.min(ids.length, MAX_COMPARE)} runs…`));
  const settled = await Promise.allSettled(ids.slice(0, MAX_COMPARE).map((id) => api(`/api/runs/${encodeURIComponent(id)}`)));
  const runs = settled.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const missing = ids.slice(0, MAX_COMPARE).filter((_, i) => settled[i].status !== 'fulfilled');
  const color = new Map(runs.map((r, i) => [r.id, COLORS[i % COLORS.length]]));
  const parts = [el('h1', {}, `Compare ${runs.length} runs`),
    el('div', { class: 'legend compare-legend' }, runs.map((r) => el('a', { class: 'legend-item', href: `#/runs/${encodeURIComponent(r.id)}` }, el('i', { class: 'swatch', 'data-color': color.get(r.id) }), r.title)))];
  if (ids.length > MAX_COMPARE) parts.push(el('p', { class: 'warning' }, `Only the first ${MAX_COMPARE} of the ${ids.length} runs asked for are compared.`));
  if (missing.length) parts.push(el('p', { class: 'error' }, `Could not load ${missing.join(', ')} (forgotten, or its directory is gone).`));
  // Videos side by side, kept in sync (the first four with one).
  const withVideo = runs.filter((r) => r.video_url).slice(0, 4);
  const players = withVideo.map((r) => player(r.video_url, `${r.title} — ${r.video}`, { frameButtons: false }));
  if (players.length >= 2) {
    players.forEach((p) => { p.video.controls = false; });
    const group = syncGroup(players.map((p) => p.video));
    state.media = { toggle: () => group.api.toggle(), seek: (d) => group.api.seek(players[0].video.currentTime + d), step: (n) => group.api.step(n) };
    window.labCompare = group.api; // for the end-to-end test and the console
    parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Videos (synchronised)'), group.bar,
      el('div', { id: 'compare-videos', class: `videos cols-${players.length}` }, players.map((p) => p.node))));
  } else {
    state.media = null;
  }
  // Media logged by step: one scrubber for every run.
  const scrub = stepScrubber(runs, { chooseKey: true });
  if (scrub) {
    state.scrubber = scrub.scrubber;
    parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Media by step'),
      el('p', { class: 'muted' }, 'Each run shows what it logged at the greatest step at or before the scrubber. Keys , and . step; a click on a chart moves the scrubber there.'), scrub));
  }
  const holder = el('div', { id: 'compare-metrics' });
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Metrics (overlaid)'), holder));
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Parameters'), paramsDiff(runs, color)));
  if (!players.length && !scrub) parts.push(el('p', { class: 'muted' }, 'None of these runs has a video or media logged by step.'));
  view.replaceChildren(el('article', { class: 'compare-view' }, parts));
  view.querySelectorAll('.compare-legend .swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
  const withMetrics = runs.map((r) => ({ id: r.id, label: r.title, color: color.get(r.id), metrics: byValue(r.metrics || []) }))
    .filter((r) => r.metrics.length);
  const live = runs.some((r) => isLive(r, null));
  holder.replaceChildren(withMetrics.length
    ? metricPanels(withMetrics, { live, count: 2, onPick: (x) => state.scrubber && state.scrubber.seek(x) })
    : el('p', { class: 'muted' }, 'None of these runs has metrics.'));
}

// The params of the runs side by side: by default only those that differ
// (a param one run lacks differs), with a toggle for all.
function paramsDiff(runs, color) {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.params || {})))].sort();
  if (!keys.length) return el('p', { class: 'muted' }, 'None of these runs recorded parameters.');
  const shown = (v) => (v === undefined ? '—' : v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const differs = (k) => new Set(runs.map((r) => JSON.stringify((r.params || {})[k] ?? null) + (k in (r.params || {})))).size > 1;
  const diff = keys.filter(differs);
  const all = el('input', { type: 'checkbox', id: 'params-all' });
  const table = el('div', { class: 'params-diff-holder' });
  const fill = () => {
    const rows = all.checked ? keys : diff;
    table.replaceChildren(rows.length ? el('table', { id: 'params-diff', class: 'params' },
      el('thead', {}, el('tr', {}, el('th', {}, 'param'), runs.map((r) => el('th', { title: r.id }, el('i', { class: 'swatch', 'data-color': color.get(r.id) }), ' ', r.title)))),
      el('tbody', {}, rows.map((k) => el('tr', { class: differs(k) ? 'differs' : 'same', 'data-key': k }, el('th', { class: 'mono' }, k),
        runs.map((r) => el('td', { class: 'mono' }, shown((r.params || {})[k]))))))) : el('p', { class: 'muted' }, `All ${keys.length} params are the same in every run.`));
    table.querySelectorAll('.swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
  };
  all.addEventListener('change', fill);
  fill();
  return el('div', {}, el('div', { class: 'toolbar' },
    el('span', { class: 'muted', id: 'params-diff-count' }, `${diff.length} of ${keys.length} params differ`),
    el('label', {}, all, ' show all')), table);
}

// ---------- jobs (the sandboxed runner) ----------

let jobStream = null;
function closeJobStream() {
  if (jobStream) { jobStream.close(); jobStream = null; }
}

// Job states (SPEC §4); `error` is a job record the Lab could not read.
function stateBadge(stateName) {
  const kind = stateName === 'finished' ? 'ok' : stateName === 'running' || stateName === 'queued' ? '' : 'warn';
  const title = stateName === 'oom' ? 'the OOM killer ended it: it used more memory than [runner] memory_max' : '';
  return el('span', { class: `badge ${kind}`, title }, stateName);
}

async function renderJobs(againId) {
  stopFollow();
  state.media = null;
  state.scrubber = null;
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
  // The arguments as one command line, split with POSIX shell quoting
  // (argv.js) and shown as the argv they make before anything starts.
  const args = el('textarea', { id: 'job-args', rows: 3, placeholder: "train.py --lr 0.3 --name 'first try'", spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'job-args-help' });
  const argsHelp = el('p', { id: 'job-args-help', class: 'muted' },
    'The arguments after the program, as a command line: split on spaces, tabs and line breaks; ', el('code', {}, "'…'"), ', ', el('code', {}, '"…"'),
    ' and ', el('code', {}, '\\'), ' quote as in a POSIX shell. No shell ever runs: ',
    el('code', {}, '$VAR'), ', ', el('code', {}, '*'), ', ', el('code', {}, '~'), ', ', el('code', {}, ';'), ', ', el('code', {}, '|'), ' and ', el('code', {}, '&&'),
    ' are passed on as they are, never expanded.');
  const argvSummary = el('p', { id: 'job-argv-summary', class: 'muted' });
  const argvList = el('ol', { id: 'job-argv', class: 'tags', 'aria-label': 'the arguments the job gets' });
  argvList.style.listStyle = 'none'; // each chip carries its number
  const timeout = el('input', { id: 'job-timeout', type: 'number', min: 1, value: 3600, 'aria-label': 'timeout in seconds' });
  const cwd = el('input', { id: 'job-cwd', placeholder: 'optional: /abs/project (under an allowed root or [runner] read_paths; seen through an overlay)', autocomplete: 'off' });
  const envBoxes = runner.env_allow.map((name) => el('label', { class: 'env' }, el('input', { type: 'checkbox', value: name }), ' ', name));
  const result = el('p', { id: 'job-result', role: 'status' });
  // Run again: the recorded argv and the line it was quoted into; the
  // argv goes exactly as recorded while the line is left as it was.
  let recorded = null;
  const argvNow = () => (recorded && args.value === recorded.text ? { argv: recorded.args } : parseArgv(args.value));
  const preview = () => {
    const parsed = argvNow();
    if (parsed.error) {
      argvList.replaceChildren();
      argvSummary.replaceChildren(el('span', { class: 'error', id: 'job-argv-error' }, `Cannot start: ${parsed.error}.`));
      return;
    }
    const { argv } = parsed;
    const n = argv.length;
    argvSummary.replaceChildren(el('code', {}, program.value), n ? ` gets ${n} argument${n === 1 ? '' : 's'}:` : ' gets no arguments.');
    if (n && argv[0] === program.value) {
      argvSummary.append(el('strong', { id: 'job-argv-program-twice' }, ' (the first is the program\'s own name: the program is chosen above, so leave it out unless you mean it)'));
    }
    argvList.replaceChildren(...argv.map((word, i) => {
      const code = el('code', {}, word);
      // Line breaks and runs of blanks as they are (CSSOM, allowed by the CSP).
      code.style.whiteSpace = 'pre-wrap';
      return el('li', { class: 'tag', title: `argument ${i + 1}` }, el('span', { class: 'muted' }, `${i + 1} `), code,
        word === '' ? el('span', { class: 'muted' }, '(empty)') : null);
    }));
  };
  args.addEventListener('input', preview);
  program.addEventListener('change', preview);
  const submit = el('button', { type: 'submit', class: 'primary', id: 'job-submit', disabled: !runner.programs.length }, 'Start run');
  const form = el('form', { id: 'job-form', class: 'job-form' },
    el('div', { class: 'badges' },
      runner.network_allowed ? el('span', { class: 'badge warn' }, 'network ALLOWED for jobs') : el('span', { class: 'badge ok' }, 'network disabled'),
      ...isolationBadges(runner.isolation)),
    el('label', {}, 'Program ', program),
    el('label', {}, 'Arguments', args), argsHelp, argvSummary, argvList,
    envBoxes.length ? el('fieldset', {}, el('legend', {}, 'Environment variables to pass'), envBoxes) : null,
    el('label', {}, 'Working directory ', cwd),
    el('label', {}, 'Timeout (s) ', timeout),
    el('div', { class: 'buttons' }, submit), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const parsed = argvNow();
    if (parsed.error) {
      result.replaceChildren(el('span', { class: 'error' }, `Nothing was started: ${parsed.error}.`));
      args.focus();
      args.setSelectionRange(parsed.at, parsed.at + 1);
      return;
    }
    submit.disabled = true;
    result.textContent = '';
    try {
      const made = await api('/api/jobs', { method: 'POST', json: {
        program: program.value,
        args: parsed.argv,
        env: envBoxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value),
        timeout_secs: Number(timeout.value) || undefined,
        cwd: cwd.value.trim() || undefined,
      } });
      location.hash = `#/jobs/${encodeURIComponent(made.id)}`;
    } catch (err) {
      result.replaceChildren(el('span', { class: 'error' }, err.message));
    } finally { submit.disabled = false; }
  });
  // "Run again": the form filled in from the job's record in the data dir
  // (never from files in its run directory, which the job could forge).
  const again = againId ? await api(`/api/jobs/${encodeURIComponent(againId)}`).catch((err) => ({ failed: err })) : null;
  const againNote = el('div', { id: 'again-note', role: 'status' });
  const workflow = workflowForm(runner);
  if (again && again.failed) {
    againNote.append(el('p', { class: 'error' }, `Job ${againId} cannot be run again: ${again.failed.message}`));
  } else if (again) {
    const r = again.relaunch || {};
    const notes = [el('strong', {}, `Filled in from job ${again.id}. `), 'Check it before you start: it runs in the sandbox like any job.'];
    if (r.workflow) {
      workflow.querySelector('#workflow-path').value = r.workflow;
      notes.push(' It was a workflow: its file is read again when it starts, and exec hooks ask for confirmation again.');
    } else {
      // The path it ran by (a venv's bin/python3 stays that venv's python):
      // the server checks it against the allowlist again.
      if (again.exec_path && again.exec_path.startsWith('/')) {
        program.append(el('option', { value: again.exec_path }, `${again.program} (${again.exec_path}, as it ran)`));
        program.value = again.exec_path;
      } else if (runner.programs.includes(again.program)) program.value = again.program;
      else notes.push(el('span', { class: 'error' }, ` Its program ${again.program} is no longer on [runner] programs.`));
      // Quoted so that the line reads back as the recorded argv; left
      // unedited, the recorded argv itself is sent.
      args.value = quoteArgv(again.args);
      recorded = { text: args.value, args: again.args };
      for (const box of envBoxes.map((l) => l.querySelector('input'))) box.checked = again.env_names.includes(box.value);
      const gone = again.env_names.filter((n) => !runner.env_allow.includes(n));
      if (gone.length) notes.push(el('span', { class: 'error' }, ` Not on [runner] env_allow any more: ${gone.join(', ')}.`));
      if (r.timeout_secs) timeout.value = r.timeout_secs;
      if (r.cwd) cwd.value = r.cwd;
      if (again.args.some((a) => a.includes('[REDACTED]')) || (r.cwd || '').includes('[REDACTED]')) {
        notes.push(el('span', { class: 'error' }, ' Some of it was redacted in the record ([REDACTED]): type those values again.'));
      }
    }
    if (!r.timeout_secs && !r.workflow) notes.push(' (A record from before relaunch existed: the working directory and timeout were not kept.)');
    againNote.append(el('div', { class: 'warning' }, notes));
  }
  preview();
  parts.push(el('section', { class: 'panel', id: 'new-run' }, el('h2', {}, again && !again.failed ? 'Run again' : 'New run'), againNote, runner.programs.length ? form : el('p', {}, 'No programs are allowlisted: add them to [runner] programs in lab.toml.')));
  parts.push(el('section', { class: 'panel', id: 'workflow-panel' }, el('h2', {}, 'Run a workflow'), workflow));
  const { jobs } = await api('/api/jobs');
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Recent jobs'), jobs.length ? el('table', { id: 'jobs' },
    el('thead', {}, el('tr', {}, el('th', {}, 'job'), el('th', {}, 'program'), el('th', {}, 'state'), el('th', {}, 'started'))),
    el('tbody', {}, jobs.map((j) => el('tr', {},
      el('td', {}, j.state === 'error' ? j.id : el('a', { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.id)),
      j.state === 'error' ? el('td', { class: 'error' }, j.error) : el('td', { class: 'mono' }, quoteArgv([j.program, ...j.args])),
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
  const details = el('div', { id: 'job-details' });
  const isolation = el('div', { class: 'isolation-holder' });
  const fill = () => {
    // The job's own isolation report (none yet while it starts), in one
    // line that opens to the whole report.
    isolation.replaceChildren(isolationDetails(job.isolation, 'job-isolation'));
    details.replaceChildren(jobFacts(job));
  };
  fill();
  view.replaceChildren(el('article', { class: 'job-view' },
    el('header', { class: 'run-head' }, el('div', {}, el('h1', {}, job.id), el('p', { class: 'muted mono' }, quoteArgv([job.program, ...job.args]))),
      el('div', { class: 'actions' }, stateHolder, cancel,
        el('a', { class: 'button', id: 'job-run-again', href: `#/jobs?again=${encodeURIComponent(job.id)}`, title: 'a New run form filled in from this job' }, 'Run again'),
        el('a', { href: `#/runs/${encodeURIComponent(job.run_id)}` }, 'open run'))),
    isolation,
    el('section', { class: 'panel' }, el('h2', {}, 'Output (redacted, live)'), out),
    el('section', { class: 'panel' }, el('h2', {}, 'Details'), details)));
  closeJobStream();
  if (!job.log_url) {
    out.append(el('span', { class: 'muted' }, '[the API gave no URL for this job\'s log]\n'));
    return;
  }
  const source = new EventSource(job.log_url);
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
  state.scrubber = null;
  loadStatus();
  document.querySelectorAll('.nav a').forEach((a) => a.classList.remove('active'));
  // Said at once; the view replaces it when it has what it needs.
  if (!hash.match(/^#\/?$/)) view.replaceChildren(el('p', { class: 'muted loading', role: 'status' }, 'Loading…'));
  try {
    let m;
    if ((m = hash.match(/^#\/runs\/([a-z0-9-]+)$/))) {
      await renderRun(m[1]);
      $('nav-runs').classList.add('active');
    } else if ((m = hash.match(/^#\/jobs(?:\?again=([a-z0-9-]+))?$/))) {
      await loadStatus();
      await renderJobs(m[1]);
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
    view.replaceChildren(failure(err, hash));
  }
}

// What a view that could not be shown says, and what to do about it.
function failure(err, hash) {
  const back = el('a', { href: '#/' }, 'Back to the runs list');
  let what = `Could not show this page: ${err.message}.`;
  if (err.status === 404 && hash.startsWith('#/runs/')) what = 'No run with this id is registered: it may have been forgotten, or the Lab restarted with other roots.';
  else if (err.status === 404 && hash.startsWith('#/jobs/')) what = 'No job with this id: its record is not in this data dir.';
  else if (err.status === 401) what = 'Your session has ended: open the link `lab serve` printed last.';
  else if (err.status === undefined) what = `Could not reach the Lab (${err.message}): is lab serve still running?`;
  return el('section', { class: 'panel failure' }, el('h1', {}, 'Nothing to show'), el('p', { class: 'error' }, what), el('p', {}, back));
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
    case ',': if (state.scrubber) { event.preventDefault(); state.scrubber.step(-1); } break;
    case '.': if (state.scrubber) { event.preventDefault(); state.scrubber.step(1); } break;
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
  location.replace(`${base}/`);
});
$('import-cancel').addEventListener('click', () => $('import-dialog').close());
$('import-form').addEventListener('submit', submitImport);
document.addEventListener('keydown', onKey);
window.addEventListener('hashchange', route);
route();
