// Parallel coordinates for a whole experiment (`#/plot?experiment=ID`),
// or for every run without one: up to MAX_RUNS runs, their values asked
// for with `fields=` in pages (at most two requests in flight), the axes
// chosen from /api/columns and remembered per experiment (parcoords.js).

import { $, el, api } from './dom.js';
import { store, loadStatus, pageLimit, fieldLimit } from './store.js';
import { parcoordsPanel, defaultChoice, MAX_RUNS } from './parcoords.js';
import { MAX_COMPARE } from './view-compare.js';

const view = $('view');
// Requests of one load in flight at once.
const IN_FLIGHT = 2;

export async function enter(page, [query = '']) {
  const experiment = new URLSearchParams(query).get('experiment') || '';
  if (!store.status) await loadStatus();
  const [found, columns] = await Promise.all([
    experiment ? api(`/api/experiments?${new URLSearchParams({ experiment })}`) : Promise.resolve([]),
    store.columns ? Promise.resolve(store.columns) : api('/api/columns'),
  ]);
  if (page.left) return;
  store.columns = columns;
  const named = found.find((e) => e.id === experiment);
  if (experiment && !named) {
    view.replaceChildren(el('section', { class: 'panel failure' }, el('h1', {}, 'Nothing to show'),
      el('p', { class: 'error' }, 'No experiment with this id has runs here.'), el('p', {}, el('a', { href: '#/' }, 'Back to the runs list'))));
    return;
  }
  const list = (offset, limit, fields) => {
    const p = new URLSearchParams({ limit: String(limit), sort: 'created', order: 'desc' });
    if (experiment) p.set('experiment', experiment);
    if (fields.length) p.set('fields', fields.slice(0, fieldLimit()).join(','));
    if (offset) p.set('cursor', String(offset));
    return `/api/runs?${p}`;
  };
  const page500 = Math.min(500, pageLimit());
  // Every run's values for `fields`: the first page says how many there
  // are; the rest (up to MAX_RUNS) are asked for IN_FLIGHT at a time.
  const load = async (fields) => {
    const first = await api(list(0, page500, fields));
    const want = Math.min(first.total, MAX_RUNS);
    const offsets = [];
    for (let at = first.runs.length; at < want; at += page500) offsets.push(at);
    const pages = new Map();
    const worker = async () => {
      while (offsets.length) {
        const at = offsets.shift();
        pages.set(at, (await api(list(at, Math.min(page500, want - at), fields))).runs);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const rows = [...first.runs, ...[...pages.keys()].sort((a, b) => a - b).flatMap((at) => pages.get(at))];
    return { rows: rows.slice(0, MAX_RUNS), total: first.total };
  };
  // A first choice: the fields of the newest run, and which of them vary
  // over the newest page of runs.
  const firstChoice = async () => {
    const newest = await api(list(0, 1, []));
    if (!newest.runs.length) return defaultChoice([], columns);
    const run = await api(`/api/runs/${encodeURIComponent(newest.runs[0].id)}`);
    const params = Object.keys(run.params || {}).filter((k) => !k.includes(','));
    const metrics = (run.metrics || []).map((m) => m.name).filter((m) => !m.includes(','));
    const fields = [...params.slice(0, fieldLimit() - 2).map((k) => `params.${k}`), ...metrics.slice(0, 2).map((m) => `metrics.${m}`)];
    const sample = await api(list(0, Math.min(100, page500), fields));
    const mine = new Set(fields);
    return defaultChoice(sample.runs, {
      params: columns.params.filter((p) => mine.has(`params.${p.key}`)),
      metrics: columns.metrics.filter((m) => mine.has(`metrics.${m.name}`)),
    });
  };
  const name = named ? named.name : 'every run';
  const back = experiment ? `#/?${new URLSearchParams({ experiment })}` : '#/';
  view.replaceChildren(el('article', { class: 'plot-view' },
    el('p', { class: 'crumbs' }, el('a', { href: back }, experiment ? `← the runs of ${name}` : '← the runs list')),
    el('h1', {}, experiment ? `Experiment ${name}` : 'Every run', el('span', { class: 'muted' }, ` · ${(named ? named.runs : store.status.counts.runs).toLocaleString()} runs`)),
    parcoordsPanel({
      key: experiment ? `experiment:${experiment}` : 'all',
      available: columns, load, firstChoice, cap: MAX_COMPARE, onLeave: (fn) => page.onLeave(fn),
    })));
}
