// One job: its state, a Cancel button, its isolation report, its output
// followed live (an EventSource on the `log_url` the API gave) and its
// record in words.

import { $, el, api } from './dom.js';
import { quoteArgv } from './argv.js';
import { isolationDetails, jobFacts, stateBadge } from './facts.js';

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
  const cancel = el('button', { type: 'button', id: 'job-cancel', disabled: job.state !== 'running' }, 'Cancel');
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try { await api(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }); } catch (err) { page.showError(err); }
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
    job = await api(`/api/jobs/${encodeURIComponent(id)}`);
    if (mine.left) return;
    stateHolder.replaceChildren(stateBadge(job.state));
    cancel.disabled = true;
    fill();
  });
}
