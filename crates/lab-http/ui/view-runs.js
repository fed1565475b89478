// The runs list: cards (a thumbnail each) or the runs table (table.js),
// with the search box (words, or a filter expression), sort, format and
// video filters, tag and experiment chips, grouping by experiment, and runs
// selected for comparison. j/k move the focus over the cards, Enter opens
// the focused run. The list's filters are in the address (`#/?filter=…`,
// `#/?q=…&experiment=ID`): a reload or Back shows the same list.

import { $, el, api, date, setPref } from './dom.js';
import { runsTable, columnPicker, chosenColumns, groupHead, groupState, groupIds } from './table.js';
import { shownStatus } from './facts.js';
import { store, formats, pageLimit, loadStatus, saveCollapsed } from './store.js';
import { MAX_COMPARE } from './view-compare.js';

// Whether the search box's text is a filter expression (sent as
// `filter=`) rather than words to find (`q=`): it starts as an expression
// does — a field (`params.`, `metrics.`, `tags.`, `status`, `format`,
// `experiment`, `experiment_name`, `name`, `created`), `not` or `(` — and
// holds a comparison (`=`, `!=`, `<`, `>`), `LIKE` or `ILIKE` before a
// quoted string, or `IN (`. Every expression does both; a run's own name
// pasted in (a Hydra job's `lr=0.1,optimizer=adam`, a tag `team=vision`)
// starts with neither, so it is searched for as words.
export function isFilter(text) {
  const starts = /^\s*(\(|not\b|(params|metrics|tags)\.|(status|format|experiment|experiment_name|name|created)\b)/i.test(text);
  const compares = /[=<>]/.test(text) || /\bi?like\s*['"]/i.test(text) || /\bin\s*\(/i.test(text);
  return starts && compares;
}

// What the search box takes, said in the list's Syntax pop-over and in
// the keys' help.
export function filterHelp() {
  const code = (t) => el('code', {}, t);
  return [
    el('p', {}, 'Words find runs whose name, id or tags hold them. A filter expression picks runs by their fields:'),
    el('ul', { class: 'filter-examples' },
      ['params.lr > 0.005 and metrics.loss < 0.5', "status IN ('finished', 'failed')", "name ILIKE 'ppo%'", "experiment_name = 'demo'", "not tags.team = 'vision'"]
        .map((t) => el('li', {}, code(t)))),
    el('p', {}, 'Fields: ', code('params.KEY'), ', ', code('metrics.NAME'), ' (last value), ', code('tags.KEY'), ', ', code('status'), ', ',
      code('format'), ', ', code('experiment'), ' (id), ', code('experiment_name'), ', ', code('name'), ', ', code('created'),
      '; odd keys in backquotes (', code('params.`model.lr`'), '). Operators: ', code('= != < <= > >='), ', ', code('LIKE'), ', ',
      code('ILIKE'), ', ', code('IN (…)'), ', with ', code('and'), ', ', code('or'), ', ', code('not'), ' and parentheses. Text that starts with a field, ',
      code('not'), ' or ', code('('), ' and holds ', code('= < >'), ', ', code("LIKE '"), ' or ', code('IN ('), ' is taken as a filter; anything else is searched for as words (so ',
      code('lr=0.1,optimizer=adam'), ' finds the Hydra job of that name).'),
  ];
}

const view = $('view');
// The page of the list on screen (page.js).
let page = null;

// `query`: the address's query (`#/?…`), when it has one: the list's
// filters are then its; without, they are those last used, and the
// address is made to say them.
export async function enter(current, [query] = []) {
  page = current;
  if (query !== undefined) fromAddress(query);
  // The format filter and the page size are the server's: asked first
  // when the list is the first view.
  if (!store.status) await loadStatus();
  if (current.left) return;
  showInAddress();
  page.actions = {
    move: (d) => {
      store.focus = Math.max(0, Math.min(cards().length - 1, store.focus + d));
      highlight();
    },
    open: () => {
      const card = cards()[store.focus];
      if (card) location.hash = `#/runs/${encodeURIComponent(card.dataset.id)}`;
    },
  };
  await renderList(true);
}

// The list's filters from the address's query; a key it lacks is no
// filter.
function fromAddress(query) {
  const p = new URLSearchParams(query);
  store.list.q = (p.get('filter') || p.get('q') || '').trim();
  store.list.tag = p.get('tag') || '';
  store.list.format = p.get('format') || '';
  store.list.experiment = p.get('experiment') || '';
  store.list.video = p.get('has_video') === 'true';
}

// The address of the list with its filters (`#/` with none).
function listAddress() {
  const p = new URLSearchParams();
  if (store.list.q) p.set(isFilter(store.list.q) ? 'filter' : 'q', store.list.q);
  if (store.list.experiment) p.set('experiment', store.list.experiment);
  if (store.list.tag) p.set('tag', store.list.tag);
  if (store.list.format) p.set('format', store.list.format);
  if (store.list.video) p.set('has_video', 'true');
  const query = p.toString();
  return query ? `#/?${query}` : '#/';
}

// The address made to say the list's filters, in place (no history
// entry per keystroke; no hashchange, so the view stays).
function showInAddress() {
  const want = listAddress();
  if ((location.hash || '#/') !== want) history.replaceState(null, '', want);
}

// The filters in force as a query (for /api/runs and /api/experiments).
// `q`: the search box's text (a search not yet listed asks with its
// own); `experiment`: only that group's runs; `none`: only runs of no
// experiment (a filter: no `?experiment=` asks for those).
function filterParams({ q: text = store.list.q, experiment = store.list.experiment, none = false } = {}) {
  const p = new URLSearchParams();
  let filter = text && isFilter(text) ? text : '';
  if (none) filter = filter ? `(${filter}) and not experiment LIKE '%'` : "not experiment LIKE '%'";
  if (filter) p.set('filter', filter);
  if (text && !isFilter(text)) p.set('q', text);
  if (store.list.tag) p.set('tag', store.list.tag);
  if (store.list.video) p.set('has_video', 'true');
  if (store.list.format) p.set('format', store.list.format);
  if (experiment) p.set('experiment', experiment);
  return p;
}

function listQuery(cursor, { q, limit = 100, fields = [], experiment, none = false } = {}) {
  const at = store.list.sort.lastIndexOf(':');
  const [sort, order] = [store.list.sort.slice(0, at), store.list.sort.slice(at + 1)];
  const p = new URLSearchParams({ limit: String(limit), sort, order });
  if (fields.length) p.set('fields', fields.join(','));
  for (const [k, v] of filterParams({ q, experiment, none })) p.set(k, v);
  if (cursor) p.set('cursor', cursor);
  return `/api/runs?${p}`;
}

// The groups of the list by experiment: each experiment the filters
// leave (`/api/experiments`, its runs counted there), then the runs of
// none (what the list's total leaves over). Each group's runs are asked
// for on their own (`?experiment=ID`), in the list's sort. `q`: the
// search box's text they are asked for with.
async function experimentGroups(fields = [], q = store.list.q) {
  const [experiments, counted] = await Promise.all([
    api(`/api/experiments?${filterParams({ q })}`),
    api(listQuery(null, { q, limit: 1 })),
  ]);
  const groups = experiments.map((e) => ({
    key: e.id, id: e.id, name: e.name, format: e.format, count: e.runs,
    query: (offset, limit) => listQuery(offset ? String(offset) : null, { q, limit, fields, experiment: e.id }),
  }));
  const rest = counted.total - experiments.reduce((n, e) => n + e.runs, 0);
  if (rest > 0) {
    groups.push({
      key: '', id: '', name: 'no experiment', format: null, count: rest,
      query: (offset, limit) => listQuery(offset ? String(offset) : null, { q, limit, fields, none: true }),
    });
  }
  return { groups, total: counted.total };
}

async function fetchRuns(reset) {
  if (reset) { store.list.runs = []; store.list.cursor = null; }
  takeRuns(await api(listQuery(reset ? null : store.list.cursor)));
}

// A page of the list (`/api/runs`' answer) after the runs held, or in
// their place (`reset`).
function takeRuns(got, reset = false) {
  if (reset) store.list.runs = [];
  store.list.runs.push(...got.runs);
  store.list.cursor = got.next_cursor;
  store.list.total = got.total;
  store.order = store.list.runs.map((r) => r.id);
}

// The first listing the list shows for the search text `q`, in the view
// it is shown in (the cards' first page, the table's, or the groups),
// asked for before anything on screen changes: `renderList` takes it as
// its `first`.
async function firstListing(q) {
  const shown = store.listView || store.autoView;
  if (shown === 'table') {
    if (!store.columns) store.columns = await api('/api/columns');
    const columns = chosenColumns(store.columns);
    if (store.grouped) return { columns, groups: await experimentGroups(columns, q) };
    return { columns, page: await api(listQuery(null, { q, limit: pageLimit(), fields: columns })) };
  }
  if (shown && store.grouped) return { groups: await experimentGroups([], q) };
  // The cards' first page, which also decides the view when none is
  // chosen yet (renderList).
  return { runs: await api(listQuery(null, { q })) };
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

// A run's card; `onSelect()` after its compare box changed.
function card(run, index, onSelect = () => {}) {
  const checkbox = el('input', { type: 'checkbox', 'aria-label': `select ${run.name} for comparison`, checked: store.selected.has(run.id) });
  checkbox.addEventListener('change', () => {
    if (checkbox.checked) store.selected.add(run.id); else store.selected.delete(run.id);
    updateCompareButton();
    onSelect();
  });
  const item = el('li', { class: 'card', 'data-id': run.id, 'data-index': index },
    el('a', { href: `#/runs/${encodeURIComponent(run.id)}`, class: 'card-link' },
      thumb(run),
      el('span', { class: 'card-title', title: run.name }, run.name),
      run.experiment ? el('span', { class: 'card-experiment', title: `experiment ${run.experiment.name} (${run.experiment.id})` }, run.experiment.name) : null,
      el('span', { class: 'card-id' }, run.id)),
    el('div', { class: 'card-meta' },
      el('span', { class: 'muted' }, date(run.created)),
      el('span', { class: 'badge format' }, run.format),
      shownStatus(run) ? el('span', { class: 'badge' }, shownStatus(run)) : null,
      run.has_video ? el('span', { class: 'badge' }, 'video') : null,
      run.error_count ? el('span', { class: 'badge warn', title: 'parts of this run could not be read' }, `${run.error_count} error${run.error_count > 1 ? 's' : ''}`) : null,
      run.available === false ? el('span', { class: 'badge warn', title: run.unavailable_reason || '' }, 'unavailable') : null),
    el('div', { class: 'tags' }, (run.tags || []).map((t) => el('button', { type: 'button', class: 'tag', onclick: () => { store.list.tag = t; relist(); } }, t))),
    el('label', { class: 'pick' }, checkbox, ' compare'));
  return item;
}

function updateCompareButton() {
  const button = $('compare-selected');
  if (!button) return;
  const n = store.selected.size;
  button.disabled = n < 2 || n > MAX_COMPARE;
  button.textContent = n > MAX_COMPARE ? `${n} selected: compare takes ${MAX_COMPARE} at most` : n ? `Compare ${n} selected` : `Compare (select 2–${MAX_COMPARE})`;
}

// How many times the list was drawn (`renderList`): a search's first
// listing asked for before the last drawing is not drawn.
let drawn = 0;

// The list again, its filters changed: the address says them. `first`:
// its first listing, already asked for (`firstListing`).
function relist(first = null) {
  showInAddress();
  return renderList(true, first);
}

// The search box's text put in force: for a filter expression the
// list's own first listing is asked for before the list is drawn again,
// and one that does not parse is said under the box (the list shown
// stays as it was); anything else lists anew.
async function searchFor(text, box, said) {
  const mine = page;
  const seen = drawn;
  let first = null;
  if (text && isFilter(text)) {
    try {
      first = await firstListing(text);
    } catch (err) {
      if (mine.left || box.value.trim() !== text) return;
      if (err.code === 'bad_filter') sayFilterError(said, text, err);
      else page.showError(err);
      return;
    }
    if (mine.left || box.value.trim() !== text) return;
    // The list was drawn again meanwhile (another sort, format, chip):
    // what was asked for is not what the controls say now; list anew.
    if (drawn !== seen) first = null;
  }
  store.list.q = text;
  await relist(first);
  const f = $('filter');
  if (f && !mine.left) { f.focus(); f.setSelectionRange(f.value.length, f.value.length); }
}

// A filter that does not parse, under the search box: the server's
// message, and the expression with a caret under the character it names.
function sayFilterError(said, text, err) {
  const at = /at character (\d+)\s*$/.exec(err.message || '');
  const message = (err.message || '').replace(/^bad filter:\s*/, '');
  const chars = Array.from(text);
  said.replaceChildren(
    el('p', {}, el('strong', {}, 'This filter does not parse: '), message, '. The list below is still the last one that did.'),
    at ? el('pre', { class: 'filter-caret', 'aria-hidden': 'true' }, chars.join(''), '\n', ' '.repeat(Math.min(Number(at[1]), chars.length)), '^') : null);
  said.hidden = false;
}

// The list drawn (again). `first`: its first listing when a search
// already asked for it (`firstListing`); each view takes the part it
// shows and asks for anything else.
async function renderList(reset = true, first = null) {
  drawn += 1;
  const search = el('input', {
    type: 'search', id: 'filter', value: store.list.q, 'aria-label': 'search or filter runs', 'aria-describedby': 'filter-error',
    placeholder: 'name, id, tag — or params.lr > 0.01', spellcheck: 'false', autocomplete: 'off',
  });
  // Where a filter that does not parse is said (role alert: announced).
  const said = el('div', { id: 'filter-error', class: 'filter-error', role: 'alert', hidden: true });
  let debounce = null;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { if (!page.left) searchFor(search.value.trim(), search, said); }, 250);
  });
  const help = el('details', { class: 'columns filter-help', id: 'filter-help' },
    el('summary', { title: 'what the search box takes' }, 'Syntax'),
    el('div', { class: 'column-pop filter-pop' }, filterHelp()));
  const sorts = [['created:desc', 'newest first'], ['created:asc', 'oldest first'], ['name:asc', 'name A–Z'], ['name:desc', 'name Z–A'], ['experiment:asc', 'by experiment'], ['imported:desc', 'recently imported']];
  // A sort chosen by a table column shows as itself.
  if (!sorts.some(([v]) => v === store.list.sort)) sorts.push([store.list.sort, store.list.sort.replace(/:(asc|desc)$/, (_, o) => (o === 'asc' ? ' ▲' : ' ▼'))]);
  const sort = el('select', { id: 'sort', 'aria-label': 'sort' },
    sorts.map(([v, t]) => el('option', { value: v, selected: v === store.list.sort }, t)));
  sort.addEventListener('change', () => { store.list.sort = sort.value; renderList(true); });
  const format = el('select', { id: 'format', 'aria-label': 'format' },
    [['', 'all formats'], ...formats()]
      .map(([v, t]) => el('option', { value: v, selected: v === store.list.format }, t)));
  format.addEventListener('change', () => { store.list.format = format.value; relist(); });
  const video = el('input', { type: 'checkbox', id: 'has-video', checked: store.list.video });
  video.addEventListener('change', () => { store.list.video = video.checked; relist(); });
  const grouping = el('input', { type: 'checkbox', id: 'group-by-experiment', checked: store.grouped });
  grouping.addEventListener('change', () => { store.grouped = grouping.checked; setPref('group-by-experiment', store.grouped); renderList(true); });
  const compare = el('button', { type: 'button', id: 'compare-selected', class: 'primary' });
  compare.addEventListener('click', () => { location.hash = `#/compare/${[...store.selected].map(encodeURIComponent).join(',')}`; });
  const tagChip = store.list.tag
    ? el('button', { type: 'button', class: 'tag active', title: 'clear tag filter', onclick: () => { store.list.tag = ''; relist(); } }, `tag: ${store.list.tag} ✕`)
    : null;
  // Only one experiment's runs (a run page's link): its name, once known.
  const experimentChip = store.list.experiment
    ? el('button', { type: 'button', class: 'tag active', id: 'experiment-chip', title: `only experiment ${store.list.experiment}: click to see every run`, onclick: () => { store.list.experiment = ''; relist(); } },
      `experiment: ${store.list.experiment} ✕`)
    : null;
  const mine = page;
  let failed = null;
  // A listing that failed: a filter that does not parse is said under
  // the box, anything else in a toast.
  const fail = (err) => {
    failed = err;
    if (err.code === 'bad_filter') sayFilterError(said, store.list.q, err); else page.showError(err);
  };
  // Not chosen yet: a table once most runs have no media (decided once,
  // on the first runs listed), else cards.
  if (!store.listView && !store.autoView) {
    try {
      if (first && first.runs) takeRuns(first.runs, true); else await fetchRuns(true);
      first = null;
      reset = false;
      const withMedia = store.list.runs.filter((r) => r.has_video || r.thumbnail_url).length;
      store.autoView = withMedia * 2 >= store.list.runs.length ? 'cards' : 'table';
    } catch (err) { fail(err); }
    if (mine.left) return;
  }
  const shown = store.listView || store.autoView || 'cards';
  const viewToggle = el('div', { class: 'segmented', role: 'group', 'aria-label': 'list view' },
    ['cards', 'table'].map((v) => {
      const b = el('button', { type: 'button', id: `view-${v}`, 'aria-pressed': String(shown === v), class: shown === v ? 'on' : '' }, v === 'cards' ? 'Cards' : 'Table');
      b.addEventListener('click', () => { if (shown !== v) { store.listView = v; setPref('list-view', v); renderList(true); } });
      return b;
    }));
  const count = el('span', { class: 'muted', id: 'run-count' });
  const picker = shown === 'table' ? el('span', { id: 'column-picker' }) : null;
  const toolbar = el('div', { class: 'toolbar' }, viewToggle, search, help, el('label', {}, 'Sort ', sort), format,
    el('label', {}, video, ' has video'), el('label', {}, grouping, ' group by experiment'), tagChip, experimentChip, picker, count,
    el('span', { class: 'grow' }), compare);
  // The experiment chip named: from the groups when the list is grouped
  // (they were just asked for), else asked.
  const nameChip = (groups = null) => { if (experimentChip) nameExperimentChip(experimentChip, groups); };
  const parts = { toolbar, said, count, picker, fail, nameChip };
  if (!store.grouped) nameChip();
  if (shown === 'table') {
    await renderTable(parts, first);
    return;
  }
  if (store.grouped) {
    await renderGroupedCards(parts, first);
    return;
  }
  try {
    if (first && first.runs) takeRuns(first.runs, true); else if (reset) await fetchRuns(true);
  } catch (err) { fail(err); }
  if (mine.left) return;
  const list = el('ul', { id: 'runs', class: 'cards' }, store.list.runs.map((r, i) => card(r, i)));
  const more = el('button', { type: 'button', id: 'more', hidden: !store.list.cursor }, 'Load more');
  more.addEventListener('click', async () => {
    try {
      const start = store.list.runs.length;
      await fetchRuns(false);
      list.append(...store.list.runs.slice(start).map((r, i) => card(r, start + i)));
      more.hidden = !store.list.cursor;
      count.textContent = `${store.list.runs.length} of ${store.list.total} runs`;
    } catch (err) { page.showError(err); }
  });
  count.textContent = `${store.list.runs.length} of ${store.list.total} runs`;
  view.replaceChildren(
    el('section', { class: 'list-view' }, toolbar, said, warnings(),
      store.list.runs.length ? list : emptyList(failed),
      more));
  updateCompareButton();
  store.focus = Math.min(store.focus, Math.max(0, store.list.runs.length - 1));
  highlight();
}

// The experiment chip says the experiment's name (its id stays the
// chip's title): from `groups` (`experimentGroups`) when they hold it,
// else once /api/experiments gives it.
async function nameExperimentChip(chip, groups = null) {
  const held = groups && groups.find((g) => g.id === store.list.experiment);
  if (held) { chip.textContent = `experiment: ${held.name} ✕`; return; }
  try {
    const found = await api(`/api/experiments?${new URLSearchParams({ experiment: store.list.experiment })}`);
    const e = found.find((x) => x.id === store.list.experiment);
    if (e) chip.textContent = `experiment: ${e.name} ✕`;
  } catch { /* the id it shows says enough */ }
}

// The cards in groups, one per experiment: a header (collapse, select
// the group for compare, its format and count), then its cards, the
// first page asked for when the group is open, more on demand. `first`:
// as `renderList` takes it.
async function renderGroupedCards({ toolbar, said, count, fail, nameChip }, first = null) {
  const mine = page;
  const holder = el('div', { id: 'runs-groups', class: 'card-groups' }, el('p', { class: 'muted' }, 'Loading runs…'));
  view.replaceChildren(el('section', { class: 'list-view' }, toolbar, said, warnings(), holder));
  updateCompareButton();
  let found = first && first.groups;
  if (!found) {
    try {
      found = await experimentGroups();
    } catch (err) {
      if (mine.left) return;
      nameChip();
      fail(err);
      holder.replaceChildren(emptyList(err));
      return;
    }
  }
  if (mine.left) return;
  const { groups, total } = found;
  nameChip(groups);
  store.list.total = total;
  count.textContent = `${total.toLocaleString()} runs in ${groups.length} group${groups.length === 1 ? '' : 's'}`;
  if (!total) { holder.replaceChildren(emptyList(null)); return; }
  holder.replaceChildren(...groups.map((g, n) => groupSection(g, n)));
  store.focus = Math.min(store.focus, Math.max(0, cards().length - 1));
  highlight();
}

// One experiment's group of cards.
function groupSection(g, n) {
  const mine = page;
  const runs = [];
  let ids = null; // every id of the group, once asked (its box)
  const list = el('ul', { class: 'cards', id: `group-runs-${n}` });
  const more = el('button', { type: 'button', class: 'group-more', hidden: true }, 'Load more');
  const box = el('input', { type: 'checkbox', class: 'group-pick', 'aria-label': `select the ${g.count} run${g.count === 1 ? '' : 's'} of ${g.name} for comparison` });
  // The box says whether all, some or none of the group are selected.
  const refresh = () => {
    const state = groupState({ ids, loaded: runs.map((r) => r.id), count: g.count }, store.selected);
    box.checked = state === 'all';
    box.indeterminate = state === 'some';
  };
  const load = async () => {
    try {
      const got = await api(g.query(runs.length, 100));
      if (mine.left) return;
      const start = runs.length;
      runs.push(...got.runs);
      list.append(...got.runs.map((r, i) => card(r, start + i, refresh)));
      more.hidden = runs.length >= g.count || !got.runs.length;
      store.order = cards().map((c) => c.dataset.id);
      refresh();
    } catch (err) { page.showError(err); }
  };
  more.addEventListener('click', load);
  box.addEventListener('change', async () => {
    const on = box.checked;
    box.disabled = true;
    try {
      ids = ids || await groupIds(g.count, async (n) => (await api(g.query(n * pageLimit(), pageLimit()))).runs);
      for (const id of ids) if (on) store.selected.add(id); else store.selected.delete(id);
    } catch (err) { page.showError(err); }
    box.disabled = false;
    for (const c of list.querySelectorAll('.card')) c.querySelector('.pick input').checked = store.selected.has(c.dataset.id);
    updateCompareButton();
    refresh();
  });
  const open = () => !store.collapsed.has(g.key);
  const toggle = el('button', { type: 'button', class: 'group-toggle', 'aria-controls': list.id, title: g.id ? `${g.name} (${g.id})` : g.name });
  const show = () => {
    toggle.setAttribute('aria-expanded', String(open()));
    toggle.replaceChildren(el('span', { class: 'chevron', 'aria-hidden': 'true' }, open() ? '▾' : '▸'), g.name);
    list.hidden = !open();
    if (!open()) more.hidden = true;
    else if (!runs.length) load();
    else more.hidden = runs.length >= g.count;
  };
  toggle.addEventListener('click', () => {
    if (open()) store.collapsed.add(g.key); else store.collapsed.delete(g.key);
    saveCollapsed();
    show();
  });
  show();
  return el('section', { class: 'card-group', 'data-group': g.key },
    groupHead(g, box, toggle),
    list, more);
}

// What an empty list says: why, and what to do.
function emptyList(failed) {
  if (failed && failed.code === 'bad_filter') return el('p', { class: 'empty' }, 'No runs listed: the filter above does not parse.');
  if (failed) return el('p', { class: 'empty error' }, `The runs could not be listed: ${failed.message}. Reload the page; if it persists, see the terminal running lab serve.`);
  if (store.list.q || store.list.tag || store.list.format || store.list.video || store.list.experiment) return el('p', { class: 'empty' }, 'No run matches these filters. Clear the search box, the tag, the experiment or the format to see every run.');
  return el('p', { class: 'empty' }, 'No runs yet. Use “Import…”, or start the Lab with --root DIR pointing at your experiments.');
}

// The table view: the toolbar of the list, a column picker, and the
// virtual table over every run that matches (in groups, when grouped).
// `listing`: as `renderList` takes its `first`.
async function renderTable({ toolbar, said, count, picker, fail, nameChip }, listing = null) {
  const holder = el('div', { class: 'table-holder' }, el('p', { class: 'muted' }, 'Loading runs…'));
  view.replaceChildren(el('section', { class: 'list-view' }, toolbar, said, warnings(), holder));
  updateCompareButton();
  const mine = page;
  const onSort = (key) => {
    const at = store.list.sort.lastIndexOf(':');
    const [was, order] = [store.list.sort.slice(0, at), store.list.sort.slice(at + 1)];
    store.list.sort = `${key}:${was === key && order === 'asc' ? 'desc' : was === key ? 'asc' : key === 'name' || key === 'experiment' ? 'asc' : 'desc'}`;
    renderList(true);
  };
  try {
    if (!store.columns) store.columns = await api('/api/columns');
    // `held`: the first listing for these columns, when held.
    const draw = async (columns, held = {}) => {
      if (store.grouped) {
        const { groups, total } = held.groups || await experimentGroups(columns);
        if (mine.left) return;
        nameChip(groups);
        store.list.total = total;
        count.textContent = `${total.toLocaleString()} runs in ${groups.length} group${groups.length === 1 ? '' : 's'}`;
        if (!total) { holder.replaceChildren(emptyList(null)); return; }
        store.order = [];
        holder.replaceChildren(runsTable({
          columns, total, groups, sort: store.list.sort, onSort,
          selected: store.selected, onSelect: updateCompareButton,
          collapsed: store.collapsed, onCollapse: saveCollapsed,
          onRows: (ids) => { store.order = ids; },
        }));
        return;
      }
      const first = held.page || await api(listQuery(null, { limit: pageLimit(), fields: columns }));
      if (mine.left) return;
      store.list.total = first.total;
      store.order = first.runs.map((r) => r.id);
      count.textContent = `${first.total.toLocaleString()} runs`;
      if (!first.total) { holder.replaceChildren(emptyList(null)); return; }
      holder.replaceChildren(runsTable({
        query: (offset, limit) => listQuery(String(offset), { limit, fields: columns }),
        columns,
        total: first.total,
        first: first.runs,
        sort: store.list.sort,
        onSort,
        selected: store.selected,
        onSelect: updateCompareButton,
        onRows: (ids) => { store.order = ids; },
      }));
    };
    const columns = chosenColumns(store.columns);
    picker.replaceChildren(columnPicker(store.columns, columns, (next) => draw(next).catch(fail)));
    const same = listing && listing.columns && listing.columns.join(',') === columns.join(',');
    await draw(columns, same ? listing : {});
  } catch (err) {
    if (mine.left) return;
    if (store.grouped) nameChip();
    fail(err);
    holder.replaceChildren(emptyList(err));
  }
}

// What the last walk of the roots could not read (a broken mlflow.db, a
// directory cut short), from /api/status.
function warnings() {
  const list = (store.status && store.status.discovery_warnings) || [];
  if (!list.length) return null;
  return el('details', { class: 'panel warnings', id: 'discovery-warnings' },
    el('summary', {}, `${list.length} place${list.length > 1 ? 's' : ''} under the roots could not be read`),
    el('ul', { class: 'errors' }, list.map((w) => el('li', {}, w))));
}

// The cards on screen, in order (in groups too).
function cards() {
  return [...view.querySelectorAll('.card')];
}

function highlight() {
  document.querySelectorAll('.card.focused').forEach((c) => c.classList.remove('focused'));
  const c = cards()[store.focus];
  if (c) { c.classList.add('focused'); c.scrollIntoView({ block: 'nearest' }); }
}
