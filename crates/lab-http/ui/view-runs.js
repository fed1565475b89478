// The runs list: cards (a thumbnail each) or the runs table (table.js),
// with the filter, sort, format and video filters, tag chips, and runs
// selected for comparison. j/k move the focus over the cards, Enter opens
// the focused run.

import { $, el, api, date, setPref } from './dom.js';
import { runsTable, columnPicker, chosenColumns } from './table.js';
import { shownStatus } from './facts.js';
import { store, formats, pageLimit, loadStatus } from './store.js';
import { MAX_COMPARE } from './view-compare.js';

const view = $('view');
// The page of the list on screen (page.js).
let page = null;

export async function enter(current) {
  page = current;
  // The format filter and the page size are the server's: asked first
  // when the list is the first view.
  if (!store.status) await loadStatus();
  if (current.left) return;
  page.actions = {
    move: (d) => {
      store.focus = Math.max(0, Math.min(store.list.runs.length - 1, store.focus + d));
      highlight();
    },
    open: () => {
      const run = store.list.runs[store.focus];
      if (run) location.hash = `#/runs/${encodeURIComponent(run.id)}`;
    },
  };
  await renderList(true);
}

function listQuery(cursor, { limit = 100, fields = [] } = {}) {
  const at = store.list.sort.lastIndexOf(':');
  const [sort, order] = [store.list.sort.slice(0, at), store.list.sort.slice(at + 1)];
  const p = new URLSearchParams({ limit: String(limit), sort, order });
  if (fields.length) p.set('fields', fields.join(','));
  if (store.list.q) p.set('q', store.list.q);
  if (store.list.tag) p.set('tag', store.list.tag);
  if (store.list.video) p.set('has_video', 'true');
  if (store.list.format) p.set('format', store.list.format);
  if (cursor) p.set('cursor', cursor);
  return `/api/runs?${p}`;
}

async function fetchRuns(reset) {
  if (reset) { store.list.runs = []; store.list.cursor = null; }
  const got = await api(listQuery(reset ? null : store.list.cursor));
  store.list.runs.push(...got.runs);
  store.list.cursor = got.next_cursor;
  store.list.total = got.total;
  store.order = store.list.runs.map((r) => r.id);
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

function card(run, index) {
  const checkbox = el('input', { type: 'checkbox', 'aria-label': `select ${run.name} for comparison`, checked: store.selected.has(run.id) });
  checkbox.addEventListener('change', () => {
    if (checkbox.checked) store.selected.add(run.id); else store.selected.delete(run.id);
    updateCompareButton();
  });
  const item = el('li', { class: 'card', 'data-id': run.id, 'data-index': index },
    el('a', { href: `#/runs/${encodeURIComponent(run.id)}`, class: 'card-link' },
      thumb(run),
      el('span', { class: 'card-title', title: run.name }, run.name),
      el('span', { class: 'card-id' }, run.id)),
    el('div', { class: 'card-meta' },
      el('span', { class: 'muted' }, date(run.created)),
      el('span', { class: 'badge format' }, run.format),
      shownStatus(run) ? el('span', { class: 'badge' }, shownStatus(run)) : null,
      run.has_video ? el('span', { class: 'badge' }, 'video') : null,
      run.error_count ? el('span', { class: 'badge warn', title: 'parts of this run could not be read' }, `${run.error_count} error${run.error_count > 1 ? 's' : ''}`) : null,
      run.available === false ? el('span', { class: 'badge warn', title: run.unavailable_reason || '' }, 'unavailable') : null),
    el('div', { class: 'tags' }, (run.tags || []).map((t) => el('button', { type: 'button', class: 'tag', onclick: () => { store.list.tag = t; renderList(true); } }, t))),
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

async function renderList(reset = true) {
  const search = el('input', { type: 'search', id: 'filter', placeholder: 'filter by name, id or tag', value: store.list.q, 'aria-label': 'filter runs' });
  let debounce = null;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { if (page.left) return; store.list.q = search.value.trim(); renderList(true).then(() => { const f = $('filter'); f.focus(); f.setSelectionRange(f.value.length, f.value.length); }); }, 200);
  });
  const sorts = [['created:desc', 'newest first'], ['created:asc', 'oldest first'], ['name:asc', 'name A–Z'], ['name:desc', 'name Z–A'], ['imported:desc', 'recently imported']];
  // A sort chosen by a table column shows as itself.
  if (!sorts.some(([v]) => v === store.list.sort)) sorts.push([store.list.sort, store.list.sort.replace(/:(asc|desc)$/, (_, o) => (o === 'asc' ? ' ▲' : ' ▼'))]);
  const sort = el('select', { id: 'sort', 'aria-label': 'sort' },
    sorts.map(([v, t]) => el('option', { value: v, selected: v === store.list.sort }, t)));
  sort.addEventListener('change', () => { store.list.sort = sort.value; renderList(true); });
  const format = el('select', { id: 'format', 'aria-label': 'format' },
    [['', 'all formats'], ...formats()]
      .map(([v, t]) => el('option', { value: v, selected: v === store.list.format }, t)));
  format.addEventListener('change', () => { store.list.format = format.value; renderList(true); });
  const video = el('input', { type: 'checkbox', id: 'has-video', checked: store.list.video });
  video.addEventListener('change', () => { store.list.video = video.checked; renderList(true); });
  const compare = el('button', { type: 'button', id: 'compare-selected', class: 'primary' });
  compare.addEventListener('click', () => { location.hash = `#/compare/${[...store.selected].map(encodeURIComponent).join(',')}`; });
  const tagChip = store.list.tag
    ? el('button', { type: 'button', class: 'tag active', title: 'clear tag filter', onclick: () => { store.list.tag = ''; renderList(true); } }, `tag: ${store.list.tag} ✕`)
    : null;
  const mine = page;
  let failed = null;
  // Not chosen yet: a table once most runs have no media (decided once,
  // on the first runs listed), else cards.
  if (!store.listView && !store.autoView) {
    try {
      await fetchRuns(true);
      reset = false;
      const withMedia = store.list.runs.filter((r) => r.has_video || r.thumbnail_url).length;
      store.autoView = withMedia * 2 >= store.list.runs.length ? 'cards' : 'table';
    } catch (err) { failed = err; page.showError(err); }
    if (mine.left) return;
  }
  const shown = store.listView || store.autoView || 'cards';
  const viewToggle = el('div', { class: 'segmented', role: 'group', 'aria-label': 'list view' },
    ['cards', 'table'].map((v) => {
      const b = el('button', { type: 'button', id: `view-${v}`, 'aria-pressed': String(shown === v), class: shown === v ? 'on' : '' }, v === 'cards' ? 'Cards' : 'Table');
      b.addEventListener('click', () => { if (shown !== v) { store.listView = v; setPref('list-view', v); renderList(true); } });
      return b;
    }));
  if (shown === 'table') {
    await renderTable({ search, sort, format, video, compare, tagChip, viewToggle });
    return;
  }
  try {
    if (reset) await fetchRuns(true);
  } catch (err) { failed = err; page.showError(err); }
  if (mine.left) return;
  const list = el('ul', { id: 'runs', class: 'cards' }, store.list.runs.map(card));
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
  const count = el('span', { class: 'muted', id: 'run-count' }, `${store.list.runs.length} of ${store.list.total} runs`);
  view.replaceChildren(
    el('section', { class: 'list-view' },
      el('div', { class: 'toolbar' }, viewToggle, search, el('label', {}, 'Sort ', sort), format, el('label', {}, video, ' has video'), tagChip, count, el('span', { class: 'grow' }), compare),
      warnings(),
      store.list.runs.length ? list : emptyList(failed),
      more));
  updateCompareButton();
  store.focus = Math.min(store.focus, Math.max(0, store.list.runs.length - 1));
  highlight();
}

// What an empty list says: why, and what to do.
function emptyList(failed) {
  if (failed) return el('p', { class: 'empty error' }, `The runs could not be listed: ${failed.message}. Reload the page; if it persists, see the terminal running lab serve.`);
  if (store.list.q || store.list.tag || store.list.format || store.list.video) return el('p', { class: 'empty' }, 'No run matches these filters. Clear the search box, the tag or the format to see every run.');
  return el('p', { class: 'empty' }, 'No runs yet. Use “Import…”, or start the Lab with --root DIR pointing at your experiments.');
}

// The table view: the toolbar of the list, a column picker, and the
// virtual table over every run that matches.
async function renderTable({ search, sort, format, video, compare, tagChip, viewToggle }) {
  const holder = el('div', { class: 'table-holder' }, el('p', { class: 'muted' }, 'Loading runs…'));
  const count = el('span', { class: 'muted', id: 'run-count' });
  const picker = el('span', { id: 'column-picker' });
  view.replaceChildren(el('section', { class: 'list-view' },
    el('div', { class: 'toolbar' }, viewToggle, search, el('label', {}, 'Sort ', sort), format, el('label', {}, video, ' has video'), tagChip, picker, count, el('span', { class: 'grow' }), compare),
    warnings(), holder));
  updateCompareButton();
  const mine = page;
  try {
    if (!store.columns) store.columns = await api('/api/columns');
    const draw = async (columns) => {
      const first = await api(listQuery(null, { limit: pageLimit(), fields: columns }));
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
        onSort: (key) => {
          const at = store.list.sort.lastIndexOf(':');
          const [was, order] = [store.list.sort.slice(0, at), store.list.sort.slice(at + 1)];
          store.list.sort = `${key}:${was === key && order === 'asc' ? 'desc' : was === key ? 'asc' : key === 'name' ? 'asc' : 'desc'}`;
          renderList(true);
        },
        selected: store.selected,
        onSelect: updateCompareButton,
      }));
    };
    const columns = chosenColumns(store.columns);
    picker.replaceChildren(columnPicker(store.columns, columns, (next) => draw(next).catch(page.showError)));
    await draw(columns);
  } catch (err) {
    page.showError(err);
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

function highlight() {
  document.querySelectorAll('.card.focused').forEach((c) => c.classList.remove('focused'));
  const c = document.querySelector(`.card[data-index="${store.focus}"]`);
  if (c) { c.classList.add('focused'); c.scrollIntoView({ block: 'nearest' }); }
}
