// Jobs: the runner's state, the New run form (a command line split as a
// POSIX shell would, shown as the argv it makes), "Run again" filled in
// from a job's record, a workflow form, and the recent jobs.

import { $, el, api, date } from './dom.js';
import { parseArgv, quoteArgv } from './argv.js';
import { isolationBadges, stateBadge } from './facts.js';
import { store, loadStatus } from './store.js';

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
  if (mine.left) return;
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
