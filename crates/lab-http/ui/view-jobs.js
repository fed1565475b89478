// Jobs: the runner's state, the New run form (a command line split as a
// POSIX shell would, shown as the argv it makes; on Slurm the partition
// it goes to and the resources it may ask for), "Run again" filled in
// from a job's record, a workflow form, and the recent jobs with where
// each runs (asked again while any is queued or running).

import { $, el, api, date } from './dom.js';
import { parseArgv, quoteArgv } from './argv.js';
import { backendBadge, isActive, isolationBadges, nodeWords, queuedWords, stateBadge } from './facts.js';
import { store, loadStatus } from './store.js';

// How often the recent jobs are asked again while one is queued or
// running (ms).
const REFRESH_MS = 5000;

const view = $('view');
// The page of the jobs view on screen (page.js).
let page = null;

export async function enter(current, [againId]) {
  page = current;
  await loadStatus();
  if (current.left) return;
  await renderJobs(againId);
}

async function renderJobs(againId) {
  const mine = page;
  const runner = store.status ? store.status.runner : null;
  const parts = [el('h1', {}, 'Jobs')];
  if (!runner || !runner.enabled) {
    parts.push(el('section', { class: 'panel' }, el('p', {}, 'The runner is disabled. Start the Lab with ',
      el('code', {}, '--enable-runner'), ' and list programs under ', el('code', {}, '[runner] programs'), ' in lab.toml to launch runs here.')));
    view.replaceChildren(el('article', {}, parts));
    return;
  }
  // The backend jobs go to (`runner.backend`): null or `local` is this
  // machine.
  const backend = runner.backend && typeof runner.backend === 'object' ? runner.backend : null;
  const slurm = !!backend && backend.name === 'slurm';
  if (!runner.available) {
    parts.push(el('section', { class: 'panel', id: 'runner-unavailable' }, el('h2', {}, 'Runner unavailable'),
      slurm
        ? el('p', {}, 'The Slurm cluster cannot take jobs now, so the Lab refuses to start them:')
        : el('p', {}, 'This machine cannot provide every isolation layer a job needs, so the Lab refuses to run jobs rather than run them with less:'),
      el('p', { class: 'error' }, runner.unavailable || 'unknown reason'),
      slurm
        ? el('p', { class: 'muted' }, 'The Lab keeps asking the cluster: load this page again once it answers.')
        : el('p', { class: 'muted' }, 'See docs/SECURITY.md for the kernel features required.')));
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
  // On Slurm: the resources to ask for, each left empty for the
  // partition's default (the server checks them against its maxima).
  const resources = slurm ? resourceFields(backend) : null;
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
      ...(runner.backend && runner.backend.name === 'slurm' && !runner.isolation
        // On Slurm each job is isolated on its node, by the helper there;
        // its own record carries that node's report.
        ? [el('span', { class: 'badge', title: 'lab __slurm-helper sets up every layer on the node and refuses a job it cannot isolate; each job shows its node\'s report' }, 'isolated on each node')]
        : isolationBadges(runner.isolation))),
    el('label', {}, 'Program ', program),
    el('label', {}, 'Arguments', args), argsHelp, argvSummary, argvList,
    envBoxes.length ? el('fieldset', {}, el('legend', {}, 'Environment variables to pass'), envBoxes) : null,
    el('label', {}, 'Working directory ', cwd),
    el('label', {}, 'Timeout (s) ', timeout),
    resources ? resources.fieldset : null,
    el('div', { class: 'buttons' }, slurm ? backendNote(backend) : null, submit), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const parsed = argvNow();
    if (parsed.error) {
      result.replaceChildren(el('span', { class: 'error' }, `Nothing was started: ${parsed.error}.`));
      args.focus();
      args.setSelectionRange(parsed.at, parsed.at + 1);
      return;
    }
    const asked = resources ? resources.read() : {};
    if (asked.error) {
      result.replaceChildren(el('span', { class: 'error' }, `Nothing was started: ${asked.error}.`));
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
        resources: asked.resources,
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
      if (resources && again.resources) resources.fill(again.resources);
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
  if (mine.left) return;
  const recent = el('div', { id: 'recent-jobs' }, jobsTable(jobs));
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Recent jobs'), recent));
  view.replaceChildren(el('article', { class: 'jobs-view' }, parts));
  // While a job is queued or running, the list is asked again (the table
  // alone is replaced, never the forms), until none is.
  if (jobs.some(isActive)) {
    let shown = JSON.stringify(jobs);
    const timer = mine.every(async () => {
      let now;
      try { ({ jobs: now } = await api('/api/jobs')); } catch { return; /* asked again next time */ }
      if (mine.left) return;
      const said = JSON.stringify(now);
      if (said !== shown) {
        shown = said;
        recent.replaceChildren(jobsTable(now));
      }
      if (!now.some(isActive)) mine.stop(timer);
    }, REFRESH_MS);
  }
}

// The recent jobs: id, command, state (and while queued why it waits,
// `.job-reason`), where it runs (`.job-backend`, `.job-node`), when.
function jobsTable(jobs) {
  if (!jobs.length) return el('p', { class: 'muted' }, 'No jobs yet.');
  return el('table', { id: 'jobs' },
    el('thead', {}, el('tr', {}, el('th', {}, 'job'), el('th', {}, 'program'), el('th', {}, 'state'), el('th', {}, 'where'), el('th', {}, 'started'))),
    el('tbody', {}, jobs.map((j) => el('tr', { class: j.state === 'queued' ? 'job-queued' : null },
      el('td', {}, j.state === 'error' ? j.id : el('a', { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.id)),
      j.state === 'error' ? el('td', { class: 'error' }, j.error) : el('td', { class: 'mono' }, quoteArgv([j.program, ...j.args])),
      el('td', {}, stateBadge(j.state), j.state === 'queued' ? queuedWords(j) : null),
      el('td', { class: 'job-where' }, j.state === 'error' ? null : [backendBadge(j), j.node && j.state !== 'queued' ? [' ', nodeWords(j)] : null]),
      el('td', { class: 'muted' }, date(j.created * 1000))))));
}

// Near the submit button on Slurm: where a job goes (its partition, and
// account and QOS when set).
function backendNote(backend) {
  const text = (v) => (typeof v === 'string' && v ? v : null);
  const partition = text(backend.partition);
  return el('span', { id: 'job-backend-note', class: 'job-backend-note muted' },
    partition ? ['runs on Slurm partition ', el('code', {}, partition)] : 'runs on Slurm (its default partition)',
    text(backend.account) ? [', account ', el('code', {}, backend.account)] : null,
    text(backend.qos) ? [', QOS ', el('code', {}, backend.qos)] : null);
}

// The CPUs, memory (MiB) and GPUs a job asks Slurm for: `fieldset`, what
// was typed (`read()`: `{ resources }`, undefined when nothing was, or
// `{ error }`), and `fill(resources)` for Run again. A maximum is said
// beside its field; the server checks it (bad_resources), so the page
// never holds a limit of its own.
function resourceFields(backend) {
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const specs = [
    ['cpus', 'job-cpus', 'CPUs', 1, num(backend.default_cpus), num(backend.max_cpus)],
    ['mem_mb', 'job-mem', 'Memory (MiB)', 1, num(backend.default_mem_mb), num(backend.max_mem_mb)],
    ['gpus', 'job-gpus', 'GPUs', 0, null, num(backend.max_gpus)],
  ];
  const inputs = {};
  const labels = specs.map(([key, id, label, min, fallback, max]) => {
    const input = el('input', { id, type: 'number', min, step: 1, inputmode: 'numeric', autocomplete: 'off',
      placeholder: fallback !== null ? `default ${fallback}` : key === 'gpus' ? 'default none' : 'default' });
    inputs[key] = input;
    return el('label', { class: 'resource' }, `${label} `, input,
      max === 0 ? el('span', { class: 'muted' }, ' none offered') : max !== null ? el('span', { class: 'muted' }, ` at most ${max}`) : null);
  });
  const fieldset = el('fieldset', { id: 'job-resources', class: 'job-resources' },
    el('legend', {}, 'Resources on Slurm (empty: the partition\'s default)'), labels);
  const read = () => {
    const resources = {};
    for (const [key, , label] of specs) {
      const input = inputs[key];
      const raw = input.value.trim();
      if (input.validity.badInput) return { error: `${label} is not a number` };
      if (raw === '') continue;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) return { error: `${label} must be a whole number` };
      resources[key] = n;
    }
    return { resources: Object.keys(resources).length ? resources : undefined };
  };
  const fill = (given) => {
    for (const [key] of specs) {
      if (typeof given[key] === 'number') inputs[key].value = String(given[key]);
    }
  };
  return { fieldset, read, fill };
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
