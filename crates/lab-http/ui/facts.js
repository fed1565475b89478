// Runs and jobs in words, for people: a run's status, the isolation a
// report says was in force, the Lab's provenance.json and a job record as
// facts a person reads. Text nodes only (dom.js `el`); shared by the views.

import { el, size, valueTree } from './dom.js';
import { quoteArgv } from './argv.js';

// The run statuses (SPEC §4) that say a run ended.
export const ENDED = ['finished', 'failed', 'crashed', 'killed'];

// The raw status word a run's format or job gave (`status_raw=…`), shown
// beside the status rather than as a tag.
export const rawStatus = (run) => ((run.tags || []).find((t) => t.startsWith('status_raw=')) || '').slice('status_raw='.length);

// A run's status as shown: one of the API's words, `unknown` left unsaid.
export function shownStatus(run) {
  return run.status && run.status !== 'unknown' ? run.status : null;
}

// Badges for the isolation layers a report says were in force (the probe's
// report in /api/status, or a job's own): each comes from the layer itself.

export function isolationBadges(iso) {
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
export function localTime(value) {
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
export function duration(seconds) {
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
  if (exit.node_fail) return `the node it ran on failed (${exit.node_fail})`;
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
  if (exit.node_fail) return 'node_fail';
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
export function isolationDetails(iso, id) {
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

// Start, end and how long, from Unix seconds (or date strings); `still`
// says why a running (or queued) one has no end yet.
function timeRows(started, ended, running, still = 'still running') {
  const span = secondsBetween(started, ended);
  return [
    ['started', localTime(started)],
    ['ended', ended == null ? (running ? el('span', { class: 'muted' }, still) : null) : localTime(ended)],
    ['duration', span !== null ? el('span', { class: 'duration' }, duration(span))
      : running && typeof started === 'number' ? el('span', { class: 'duration' }, `${duration(Date.now() / 1000 - started)} so far`) : null],
  ];
}

const LAB_KEYS = new Set(['version', 'lab_version', 'program', 'path', 'resolved_path', 'sha256', 'argv', 'steps', 'cwd', 'git', 'job_dir',
  'env_names', 'network_allowed', 'started', 'ended', 'exit', 'exit_code', 'isolation']);

// A run's provenance.json for people: the Lab's own record of a job (with
// `lab_version`), or one a run wrote itself, shown by the keys it shares.
export function provenanceView(prov, job) {
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
export function jobFacts(job, isolationId) {
  const running = isActive(job);
  const slurm = job.backend === 'slurm';
  return facts([
    ['state', outcome(job.state, job.exit)],
    ['waiting', job.state === 'queued' ? queuedReason(job) : null],
    ...timeRows(job.created, job.ended, running, job.state === 'queued' ? 'not started yet: waiting in the queue' : undefined),
    ['program', programFacts(job.exec_path, null, null, job.program)],
    ['arguments', job.args.length ? code(quoteArgv(job.args), { class: 'argv' }) : el('span', { class: 'muted' }, 'none')],
    ['working directory', job.relaunch && job.relaunch.cwd ? code(job.relaunch.cwd) : null],
    ['workflow', job.relaunch && job.relaunch.workflow ? code(job.relaunch.workflow) : null],
    ['time limit', job.relaunch && job.relaunch.timeout_secs ? duration(job.relaunch.timeout_secs) : null],
    ['network', network(job.network_allowed)],
    ['limits', job.isolation && typeof job.isolation === 'object' && !job.isolation.refused ? limitsWords(job.isolation.limits) : null],
    ['environment', words(job.env_names)],
    ['backend', slurm ? 'Slurm' : job.backend && job.backend !== 'local' ? code(job.backend) : 'local (this machine)'],
    ['Slurm job id', typeof job.slurm_job_id === 'string' && job.slurm_job_id ? code(job.slurm_job_id, { class: 'job-slurm-id' })
      : slurm ? el('span', { class: 'muted' }, 'none yet (not submitted)') : null],
    ['node', typeof job.node === 'string' && job.node ? code(job.node) : null],
    ['resources', resourcesWords(job.resources)],
    ['isolation', isolationId ? isolationDetails(job.isolation, isolationId) : null],
  ], { id: 'job-facts' });
}

// Whether a job has not ended: queued (in a cluster's queue) or running.
// Pages that follow jobs refresh these.
export const isActive = (job) => !!job && (job.state === 'running' || job.state === 'queued');

const STATE_TITLES = {
  oom: 'the OOM killer ended it: it used more memory than [runner] memory_max',
  queued: 'waiting in the Slurm queue for the cluster to start it',
  node_fail: 'the node it ran on failed: Slurm ended it (Run again to try once more)',
};

// Job states (SPEC §4); `error` is a job record the Lab could not read.
// Each badge has the class `state-<state>` (for the known words only).
export function stateBadge(stateName) {
  const kind = stateName === 'finished' ? 'ok' : stateName === 'running' || stateName === 'queued' ? '' : 'warn';
  const known = typeof stateName === 'string' && /^[a-z_]{1,20}$/.test(stateName);
  const classes = ['badge', kind, known ? `state-${stateName}` : ''].filter(Boolean).join(' ');
  return el('span', { class: classes, title: STATE_TITLES[stateName] || '' }, stateName);
}

// Where a job runs, as a badge of class `job-backend`: `local`, or
// `Slurm #<id>` (its Slurm job id, once submitted).
export function backendBadge(job) {
  const slurm = job.backend === 'slurm';
  const id = typeof job.slurm_job_id === 'string' && job.slurm_job_id ? job.slurm_job_id : null;
  const text = slurm ? (id ? `Slurm #${id}` : 'Slurm') : job.backend && job.backend !== 'local' ? String(job.backend) : 'local';
  const title = slurm ? (id ? `Slurm job ${id}` : 'not yet submitted to Slurm') : 'run by the Lab on this machine';
  return el('span', { class: `badge job-backend ${slurm ? 'backend-slurm' : 'backend-local'}`, title }, text);
}

// The node a job runs (or ran) on, as `on <node>` of class `job-node`;
// null when its record names none.
export function nodeWords(job) {
  return typeof job.node === 'string' && job.node ? el('span', { class: 'job-node', title: 'the Slurm node' }, `on ${job.node}`) : null;
}

// Slurm's usual pending reasons, in words (the title of the reason).
const REASONS = {
  Priority: 'jobs of higher priority are ahead of it',
  Resources: 'waiting for CPUs, memory or GPUs to become free',
  PartitionDown: 'its partition is down: nothing in it starts until an administrator brings it up',
  PartitionInactive: 'its partition is inactive',
  ReqNodeNotAvail: 'a node it needs is not available (down, drained or reserved)',
  NodeDown: 'a node it needs is down',
  BeginTime: 'its start time has not come yet',
  Dependency: 'waiting for a job it depends on',
  JobHeldUser: 'held by its user',
  JobHeldAdmin: 'held by an administrator',
  QOSMaxJobsPerUserLimit: 'its QOS limit on jobs per user is reached',
  AssocGrpCpuLimit: 'its account\'s CPU limit is reached',
  AssocGrpMemLimit: 'its account\'s memory limit is reached',
  AssocGrpGRES: 'its account\'s GPU limit is reached',
  None: 'no reason given yet (just submitted)',
};

// Why a queued job waits and where it is in its queue, as
// ` — <reason>, #<n> in queue` of class `job-reason` (after the state
// badge, which says `queued`).
export function queuedWords(job, lead = ' — ') {
  const reason = typeof job.reason === 'string' && job.reason ? job.reason : null;
  const at = Number.isInteger(job.queue_position) && job.queue_position > 0 ? job.queue_position : null;
  const parts = [reason, at ? `#${at} in queue` : null].filter(Boolean);
  return el('span', { class: 'job-reason', title: (reason && REASONS[reason]) || '' },
    `${lead}${parts.length ? parts.join(', ') : 'waiting in the queue'}`);
}

// Why a queued job waits, for its facts: the reason, then in words.
function queuedReason(job) {
  const said = queuedWords(job, '');
  said.className = 'queued-reason';
  const meaning = said.title;
  return meaning ? [said, el('span', { class: 'muted' }, ` (${meaning})`)] : said;
}

// The resources a job asked for (its record's `resources`), in words;
// null when none were.
export function resourcesWords(r) {
  if (!r || typeof r !== 'object') return null;
  const n = (v) => typeof v === 'number' && Number.isFinite(v);
  const parts = [];
  if (n(r.cpus)) parts.push(`${r.cpus} CPU${r.cpus === 1 ? '' : 's'}`);
  if (n(r.mem_mb)) parts.push(`${r.mem_mb} MiB memory`);
  if (n(r.gpus)) parts.push(`${r.gpus} GPU${r.gpus === 1 ? '' : 's'}`);
  return parts.length ? el('span', { class: 'job-resources' }, parts.join(', ')) : null;
}

// Metric names with a finite last value first, then by name.
export const byValue = (ms) => ms.slice().sort((a, b) => (a.last === null) - (b.last === null) || a.name.localeCompare(b.name)).map((m) => m.name);

// Whether a run is likely still being written: its format or job says it
// runs, or a file of it changed in the last two minutes.
export function isLive(run, job) {
  if (job && job.state === 'running') return true;
  if (run.status === 'running') return true;
  // A run whose format or job says it ended is not being written.
  if (ENDED.includes(run.status)) return false;
  const newest = Math.max(0, ...run.artifacts.map((a) => a.modified || 0));
  return Date.now() / 1000 - newest < 120;
}
