// What outlives a view: the server's own facts (/api/status, asked again
// on each navigation and shown in the status strip), the runs list's
// filters (also in the address: `#/?filter=…`, view-runs.js), whether it
// is grouped by experiment and which groups are collapsed, the runs
// selected for comparison and the order last listed (j/k on a run page). Everything a view makes for itself (its timers,
// streams, media, toasts, dialogs) lives in its `page` (page.js) instead.

import { $, el, api, pref } from './dom.js';

const COLLAPSED_KEY = 'lab-collapsed-experiments';

export const store = {
  status: null,
  // `q` is the search box's text: a filter expression or words to find
  // (view-runs.js `isFilter` tells which); `experiment` an experiment id.
  list: { q: '', tag: '', video: false, format: '', experiment: '', sort: 'created:desc', runs: [], cursor: null, total: 0 },
  selected: new Set(),
  order: [],        // run ids in the order last listed (for j/k on a run page)
  focus: 0,         // focused card on the list
  // Cards or table as the user chose (remembered), else null: the list
  // then opens as a table when most runs have no media.
  listView: pref('list-view', null),
  columns: null,    // the available columns (/api/columns), once asked
  // The list grouped by experiment, as the user chose (remembered).
  grouped: pref('group-by-experiment', false) === true,
  // The experiment groups collapsed (by id, '' for the runs of none), for
  // this browser session.
  collapsed: sessionSet(COLLAPSED_KEY),
};

// A set of strings kept in sessionStorage: it lasts while the tab does.
function sessionSet(key) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(key) || '[]');
    return new Set(Array.isArray(saved) ? saved.filter((v) => typeof v === 'string') : []);
  } catch { return new Set(); }
}

// The collapsed groups kept for the session (after a change).
export function saveCollapsed() {
  try { sessionStorage.setItem(COLLAPSED_KEY, JSON.stringify([...store.collapsed])); } catch { /* storage off */ }
}

// The formats the server reads, as `[id, label]` (`/api/status`
// `formats`): the format filter offers these and no others.
export function formats() {
  return ((store.status && store.status.formats) || []).map((f) => [f.id, f.label]);
}

// The most runs one page of /api/runs holds (`/api/status` `limits`).
export function pageLimit() {
  return (store.status && store.status.limits && store.status.limits.runs_page) || 100;
}

// The most extra fields (`fields=`) one list may ask for (`/api/status`
// `limits`).
export function fieldLimit() {
  return (store.status && store.status.limits && store.status.limits.fields) || 8;
}

// /api/status into the store and the status strip. Throws what api()
// throws; the caller says it where it belongs.
export async function loadStatus() {
  const s = await api('/api/status');
  store.status = s;
  const badge = (text, kind) => el('span', { class: `badge ${kind}` }, text);
  $('status').replaceChildren(
    el('span', { class: 'addr', title: 'bound address' }, s.address),
    el('span', { class: 'muted' }, `v${s.version} · ${s.counts.runs} runs`),
    s.runner.enabled ? (s.runner.available ? badge('runner enabled', 'warn') : el('span', { class: 'badge bad', title: s.runner.unavailable || '' }, 'runner UNAVAILABLE')) : badge('runner disabled', 'ok'),
    s.runner.network_allowed ? badge('network allowed', 'warn') : badge('network disabled', 'ok'),
  );
  return s;
}
