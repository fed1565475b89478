// Lab UI: the router and the header. Plain ES modules, no build step;
// one module per view (view-*.js), each entered with a fresh page
// (page.js) that goes when the view is left. Nothing a run wrote is ever
// inserted as HTML: names, notes, logs and provenance are text nodes.
// Every URL an element loads (a video, an image, a download, a job's log
// stream) is one the API gave (`url`, `video_url`, `thumbnail_url`,
// `log_url`: signed for this session, SPEC §4); none is built here, and
// without one the element is not shown.

import { $, el, api, base, showError, checkSession } from './dom.js';
import { loadStatus } from './store.js';
import { newPage } from './page.js';
import { keyHandler } from './keys.js';
import { wireImport } from './view-import.js';
import * as runs from './view-runs.js';
import * as run from './view-run.js';
import * as compare from './view-compare.js';
import * as plot from './view-plot.js';
import * as jobs from './view-jobs.js';
import * as job from './view-job.js';

// Loaded from a login link while already signed in: the key leaves the
// address bar and history at once.
if (location.hash.startsWith('#key=')) history.replaceState(null, '', location.pathname + location.search);
// Media that fails to load (a 401 after a restart, say) is checked.
document.addEventListener('error', (event) => {
  if (event.target instanceof HTMLMediaElement || event.target instanceof HTMLImageElement) checkSession();
}, true);

// The router: a hash pattern, the view it shows (its `enter(page,
// captures)`), the nav link it marks. The first match wins; anything else
// is the runs list. The list's filters ride in its query (`#/?filter=…`,
// `#/?experiment=ID`), given to it as its one capture.
const ROUTES = [
  { path: /^#\/runs\/([a-z0-9-]+)$/, view: run, nav: 'nav-runs' },
  { path: /^#\/jobs(?:\?again=([a-z0-9-]+))?$/, view: jobs, nav: 'nav-jobs' },
  { path: /^#\/jobs\/([a-z0-9-]+)$/, view: job, nav: 'nav-jobs' },
  { path: /^#\/compare\/(.*)$/, view: compare, nav: 'nav-compare' },
  { path: /^#\/plot(?:\?(.*))?$/, view: plot, nav: 'nav-runs' },
  { path: /^#\/?\?(.*)$/, view: runs, nav: 'nav-runs' },
  { path: /^/, view: runs, nav: 'nav-runs' },
];

const view = $('view');
// The page on screen (page.js): what the keys act on.
let page = null;

async function route() {
  const hash = location.hash || '#/';
  if (page) page.leave();
  const current = newPage(view);
  page = current;
  loadStatus().catch((err) => current.showError(err));
  document.querySelectorAll('.nav a').forEach((a) => a.classList.remove('active'));
  // Said at once; the view replaces it when it has what it needs.
  if (!hash.match(/^#\/?$/)) view.replaceChildren(el('p', { class: 'muted loading', role: 'status' }, 'Loading…'));
  let match = null;
  const target = ROUTES.find((r) => (match = hash.match(r.path)));
  try {
    await target.view.enter(current, match.slice(1));
    if (current.left) return;
    $(target.nav).classList.add('active');
    view.focus({ preventScroll: true });
  } catch (err) {
    if (current.left) return;
    current.showError(err);
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

wireImport();
$('signout').addEventListener('click', async () => {
  try { await api('/api/session', { method: 'DELETE' }); } catch (err) { showError(err); return; }
  location.replace(`${base}/`);
});
document.addEventListener('keydown', keyHandler(() => page));
window.addEventListener('hashchange', route);
route();
