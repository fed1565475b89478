// One job: its state, where it runs (its backend, its Slurm id and node,
// and while queued why it waits), a Cancel button, its isolation report,
// its output followed live (an EventSource on the `log_url` the API gave)
// and its record in words. A queued or running job's record is asked
// again every few seconds: a Slurm job moves in its queue, then starts
// on a node, without a line of output.

import { $, el, api } from './dom.js';
import { quoteArgv } from './argv.js';
import { backendBadge, isActive, isolationDetails, jobFacts, nodeWords, queuedWords, stateBadge } from './facts.js';

// How often a queued or running job's record is asked again (ms).
const REFRESH_MS = 3000;

const view = $('view');
// The page of the job on screen (page.js).
let page = null;

export async function enter(current, [id]) {
  page = current;
  await renderJob(id);
}

async function renderJob(id) {
  const mine = page;
  let job = await api(`/api/jobs/${encodeURIComponent(id)}`);
  if (mine.left) return;
  const stateHolder = el('span', { id: 'job-state' }, stateBadge(job.state));
  let cancelling = false;
  const cancel = el('button', { type: 'button', id: 'job-cancel', disabled: !isActive(job) }, 'Cancel');
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    cancelling = true;
    try { await api(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }); } catch (err) { cancelling = false; page.showError(err); }
  });
  const out = el('pre', { class: 'log', id: 'job-log' });
  const details = el('div', { id: 'job-details' });
  const isolation = el('div', { class: 'isolation-holder' });
  // Where it runs: its backend, then while queued why it waits and its
  // place in the queue, else the node it runs or ran on.
  const where = el('p', { id: 'job-where', class: 'job-where' });
  const fill = () => {
    // The job's own isolation report (none yet while it starts), in one
    // line that opens to the whole report (left open if it was).
    const wasOpen = !!isolation.querySelector('details[open]');
    const report = isolationDetails(job.isolation, 'job-isolation');
    if (wasOpen && report.tagName === 'DETAILS') report.open = true;
    isolation.replaceChildren(report);
    details.replaceChildren(jobFacts(job));
    const node = nodeWords(job);
    const then = job.state === 'queued' ? queuedWords(job, 'waiting: ') : node;
    where.replaceChildren(backendBadge(job), ...(then ? [' ', then] : []));
  };
  fill();
  // The record shown, as the API gave it: what tells a change.
  let shown = JSON.stringify(job);
  const show = (next) => {
    job = next;
    const said = JSON.stringify(job);
    if (said === shown) return;
    shown = said;
    stateHolder.replaceChildren(stateBadge(job.state));
    cancel.disabled = cancelling || !isActive(job);
    fill();
  };
  if (isActive(job)) {
    const timer = mine.every(async () => {
      let next;
      try { next = await api(`/api/jobs/${encodeURIComponent(id)}`); } catch { return; /* asked again next time */ }
      if (mine.left) return;
      show(next);
      if (!isActive(job)) mine.stop(timer);
    }, REFRESH_MS);
  }
  view.replaceChildren(el('article', { class: 'job-view' },
    el('header', { class: 'run-head' }, el('div', {}, el('h1', {}, job.id), el('p', { class: 'muted mono' }, quoteArgv([job.program, ...job.args])), where),
      el('div', { class: 'actions' }, stateHolder, cancel,
        el('a', { class: 'button', id: 'job-run-again', href: `#/jobs?again=${encodeURIComponent(job.id)}`, title: 'a New run form filled in from this job' }, 'Run again'),
        el('a', { href: `#/runs/${encodeURIComponent(job.run_id)}` }, 'open run'))),
    isolation,
    el('section', { class: 'panel' }, el('h2', {}, 'Output (redacted, live)'), out),
    el('section', { class: 'panel' }, el('h2', {}, 'Details'), details)));
  if (!job.log_url) {
    out.append(el('span', { class: 'muted' }, '[the API gave no URL for this job\'s log]\n'));
    return;
  }
  const source = new EventSource(job.log_url);
  page.onLeave(() => source.close());
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
    const ended = await api(`/api/jobs/${encodeURIComponent(id)}`);
    if (mine.left) return;
    show(ended);
    cancel.disabled = true;
  });
}
