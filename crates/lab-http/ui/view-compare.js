// Compare: up to MAX_COMPARE runs side by side: videos kept in sync,
// media by step on one scrubber, metrics overlaid, and the parameters
// that differ. Runs that share a name are told apart everywhere here by
// their experiment's name (or their directory's, without one).

import { $, el, api } from './dom.js';
import { metricPanels, COLORS } from './chart.js';
import { player, syncGroup } from './player.js';
import { stepScrubber } from './media.js';
import { byValue, isLive } from './facts.js';
import { parcoordsPanel, defaultChoice } from './parcoords.js';

/// Most runs compared at once.
export const MAX_COMPARE = 20;

const view = $('view');
// The page of the comparison on screen (page.js).
let page = null;

export async function enter(current, [list]) {
  page = current;
  await renderCompare(list.split(',').map(decodeURIComponent).filter((s) => /^[a-z0-9][a-z0-9-]{0,63}$/.test(s)));
}

// The last part of a path (`/a/b/` → `b`).
const tail = (path) => (path || '').replace(/\/+$/, '').split('/').pop() || path || '';

// Each run's label: its name, and where two runs share one, the name and
// its experiment's name (its directory's when it has none, or when that
// is shared too), so no two labels are the same.
export function compareLabels(runs) {
  const counted = (label) => {
    const n = new Map();
    for (const r of runs) n.set(label(r), (n.get(label(r)) || 0) + 1);
    return (r) => n.get(label(r)) > 1;
  };
  const byName = counted((r) => r.name);
  const withExperiment = (r) => (byName(r) ? `${r.name} · ${r.experiment ? r.experiment.name : tail(r.path)}` : r.name);
  const again = counted(withExperiment);
  const withPath = (r) => (again(r) ? `${r.name} · ${tail(r.path)}` : withExperiment(r));
  const last = counted(withPath);
  return new Map(runs.map((r) => [r.id, last(r) ? `${r.name} · ${r.id}` : withPath(r)]));
}

async function renderCompare(ids) {
  const mine = page;
  if (ids.length < 2) {
    view.replaceChildren(el('section', { class: 'panel' }, el('h1', {}, 'Compare runs'),
      el('p', {}, `Select two to ${MAX_COMPARE} runs on the runs list (the “compare” boxes on cards, or the first column of the table), then press “Compare”.`)));
    return;
  }
  view.replaceChildren(el('p', { class: 'muted' }, `Loading ${Math.min(ids.length, MAX_COMPARE)} runs…`));
  const settled = await Promise.allSettled(ids.slice(0, MAX_COMPARE).map((id) => api(`/api/runs/${encodeURIComponent(id)}`)));
  // Shown by their labels (compareLabels) in the legend, the charts, the
  // media and the params.
  const loaded = settled.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const labels = compareLabels(loaded);
  const runs = loaded.map((r) => ({ ...r, name: labels.get(r.id) }));
  if (mine.left) return;
  const missing = ids.slice(0, MAX_COMPARE).filter((_, i) => settled[i].status !== 'fulfilled');
  const color = new Map(runs.map((r, i) => [r.id, COLORS[i % COLORS.length]]));
  const parts = [el('h1', {}, `Compare ${runs.length} runs`),
    el('div', { class: 'legend compare-legend' }, runs.map((r) => el('a', { class: 'legend-item', href: `#/runs/${encodeURIComponent(r.id)}`, title: place(r) }, el('i', { class: 'swatch', 'data-color': color.get(r.id) }), r.name)))];
  if (ids.length > MAX_COMPARE) parts.push(el('p', { class: 'warning' }, `Only the first ${MAX_COMPARE} of the ${ids.length} runs asked for are compared.`));
  if (missing.length) parts.push(el('p', { class: 'error' }, `Could not load ${missing.join(', ')} (forgotten, or its directory is gone).`));
  // Videos side by side, kept in sync (the first four with one).
  const withVideo = runs.filter((r) => r.video_url).slice(0, 4);
  const players = withVideo.map((r) => player(r.video_url, `${r.name} — ${r.video}`, { frameButtons: false }));
  if (players.length >= 2) {
    players.forEach((p) => { p.video.controls = false; });
    const group = syncGroup(players.map((p) => p.video));
    page.media = { toggle: () => group.api.toggle(), seek: (d) => group.api.seek(players[0].video.currentTime + d), step: (n) => group.api.step(n) };
    window.labCompare = group.api; // for the end-to-end test and the console
    parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Videos (synchronised)'), group.bar,
      el('div', { id: 'compare-videos', class: `videos cols-${players.length}` }, players.map((p) => p.node))));
  }
  // Media logged by step: one scrubber for every run.
  const scrub = stepScrubber(runs, { chooseKey: true });
  if (scrub) {
    page.scrubber = scrub.scrubber;
    parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Media by step'),
      el('p', { class: 'muted' }, 'Each run shows what it logged at the greatest step at or before the scrubber. Keys , and . step; a click on a chart moves the scrubber there.'), scrub));
  }
  const holder = el('div', { id: 'compare-metrics' });
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Metrics (overlaid)'), holder));
  parts.push(el('section', { class: 'panel' }, el('h2', {}, 'Parameters'), paramsDiff(runs, color)));
  parts.push(selectionPlot(runs));
  if (!players.length && !scrub) parts.push(el('p', { class: 'muted' }, 'None of these runs has a video or media logged by step.'));
  view.replaceChildren(el('article', { class: 'compare-view' }, parts));
  view.querySelectorAll('.compare-legend .swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
  const withMetrics = runs.map((r) => ({ id: r.id, label: r.name, color: color.get(r.id), metrics: byValue(r.metrics || []) }))
    .filter((r) => r.metrics.length);
  const live = runs.some((r) => isLive(r, null));
  holder.replaceChildren(withMetrics.length
    ? metricPanels(withMetrics, { live, growing: runs.some((r) => r.status === 'running'), count: 2, onPick: (x) => page.scrubber && page.scrubber.seek(x) })
    : el('p', { class: 'muted' }, 'None of these runs has metrics.'));
}

// Where a run is: its id, experiment and path (a legend's tooltip).
const place = (r) => `${r.id}${r.experiment ? ` · experiment ${r.experiment.name}` : ''} · ${r.path}`;

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
      el('thead', {}, el('tr', {}, el('th', {}, 'param'), runs.map((r) => el('th', { title: r.id }, el('i', { class: 'swatch', 'data-color': color.get(r.id) }), ' ', r.name)))),
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

// Parallel coordinates of the runs compared (parcoords.js): the axes
// offered are the params and metrics these runs have (each with how many
// of them have it), their values those already loaded; the choice is
// remembered for every selection under one key.
function selectionPlot(runs) {
  const rows = runs.map((r) => ({
    id: r.id, name: r.name, params: r.params || {},
    metrics: Object.fromEntries((r.metrics || []).map((m) => [m.name, m.last])),
  }));
  const counted = (lists) => {
    const n = new Map();
    for (const list of lists) for (const k of list) n.set(k, (n.get(k) || 0) + 1);
    return [...n.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  };
  const available = {
    params: counted(rows.map((r) => Object.keys(r.params))).map(([key, n]) => ({ key, runs: n })),
    metrics: counted(rows.map((r) => Object.keys(r.metrics))).map(([name, n]) => ({ name, runs: n })),
  };
  return parcoordsPanel({
    key: 'selection', available, cap: MAX_COMPARE, onLeave: (fn) => page.onLeave(fn),
    load: async () => ({ rows, total: rows.length }),
    firstChoice: async () => defaultChoice(rows, available),
    title: 'Parallel coordinates of these runs',
  });
}
