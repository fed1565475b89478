// The runs table: one row per run, a column per chosen param and metric
// (the metric's last value), sort by any column on the server, rows
// selected for compare. Only the rows in view are in the DOM, and pages of
// the list are asked for as they come into view, so 10,000 runs cost what
// a screenful costs.
//
// One column template for the header and every row: the widths (in px,
// each column resizable and remembered) make one `grid-template-columns`
// string, set once on the table as `--columns`, which the header and
// every row take from it (app.css). No track depends on a cell's content,
// so every cell's left edge is its header's whatever the titles and tags.
// The name column sticks to the left edge when the table scrolls sideways.
//
// Grouped by experiment, the grid's rows are each group's header row (a
// row of the grid: its pick cell and one cell spanning the rest, with
// aria-expanded) followed, unless the group is collapsed, by the group's
// runs. Each group's runs are asked for by `?experiment=ID` (the runs of
// no experiment by a filter), a page at a time as they come into view, so
// a group's rows always arrive together and in the list's own sort,
// whatever the other groups hold; `sort=experiment` over one paged list
// could not promise that, as two experiments may share a name.

import { el, api, date, pref, setPref } from './dom.js';
import { fmt } from './chart.js';
import { pageLimit, fieldLimit } from './store.js';

const ROW = 34;
// The checkbox column's width; it and the name column stick on the left.
const PICK = 36;
const MIN_WIDTH = 48;
const MAX_WIDTH = 1200;
// Step of a resize handle's arrow keys.
const KEY_STEP = 16;

// Fixed columns: key (as `sort=` names it, or null when the server cannot
// sort by it; the key of its remembered width is `id`), header, default
// width, cell text (the cell's full text, shown on hover unless `tip`
// says otherwise), cell.
const FIXED = [
  { id: 'name', key: 'name', head: 'name', width: 280, text: (r) => r.name, cell: (r) => el('a', { href: `#/runs/${encodeURIComponent(r.id)}`, class: 'row-title', 'data-focus': 'name' }, r.name) },
  { id: 'experiment', key: 'experiment', head: 'experiment', width: 140, text: (r) => (r.experiment ? r.experiment.name : ''), tip: (r) => (r.experiment ? `${r.experiment.name} (${r.experiment.id})` : 'no experiment'), cell: null },
  { id: 'format', key: 'format', head: 'format', width: 110, text: (r) => r.format, cell: (r) => el('span', { class: 'badge format' }, r.format) },
  { id: 'status', key: 'status', head: 'status', width: 90, text: (r) => (r.status && r.status !== 'unknown' ? r.status : ''), cell: null },
  { id: 'created', key: 'created', head: 'created', width: 160, text: (r) => date(r.created), cell: (r) => el('span', { class: 'muted' }, date(r.created)) },
  { id: 'tags', key: null, head: 'tags', width: 200, text: (r) => (r.tags || []).join(', '), cell: null },
];
const EXTRA_WIDTH = 120;

const cellValue = (v) => {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return fmt(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
};

// A link to an experiment's parallel coordinates (view-plot.js), for a
// group that is an experiment.
export function plotLink(g) {
  if (!g.id) return null;
  return el('a', { class: 'group-plot', href: `#/plot?${new URLSearchParams({ experiment: g.id })}`, 'data-focus': 'plot', title: `parallel coordinates of the runs of ${g.name}` }, 'Parallel coordinates');
}

// A group's header (the cards' and the table's): `lead` (its box, its
// collapse toggle), then its format, its count of runs, its plot link and
// its id.
export function groupHead(g, ...lead) {
  return el('div', { class: 'group-head' },
    ...lead,
    g.format ? el('span', { class: 'badge format' }, g.format) : null,
    el('span', { class: 'muted group-count' }, `${g.count.toLocaleString()} run${g.count === 1 ? '' : 's'}`),
    plotLink(g),
    g.id ? el('span', { class: 'muted mono group-id', title: g.id }, g.id) : null);
}

// Whether `all`, `some` or `none` of a group of `count` runs are
// selected, as far as its runs known tell: `ids`, every id of the group
// once asked for (else null), and `loaded`, the ids of its runs loaded
// (every id, when all are).
export function groupState({ ids, loaded, count }, selected) {
  const known = ids || (loaded.length === count ? loaded : null);
  const chosen = (known || loaded).filter((id) => selected.has(id)).length;
  if (known && chosen && chosen === known.length) return 'all';
  return chosen ? 'some' : 'none';
}

// Every run id of a group of `count` runs, its pages asked for in turn:
// `page(n)` resolves to the runs of page n (`pageLimit()` runs a page).
export async function groupIds(count, page) {
  const ids = [];
  for (let n = 0; ids.length < count; n++) {
    const runs = await page(n);
    if (!runs.length) break;
    ids.push(...runs.map((r) => r.id));
  }
  return ids;
}

// Whether a name can be a column: `fields=` is comma-separated, so a key
// holding a comma cannot be asked for.
const askable = (name) => !name.includes(',');

// The columns the user chose (`params.KEY`, `metrics.NAME`), remembered.
export function chosenColumns(available) {
  const saved = pref('columns', null);
  if (Array.isArray(saved)) return saved.filter((c) => typeof c === 'string' && askable(c)).slice(0, fieldLimit());
  // First visit: the three commonest params and two commonest metrics.
  return [
    ...available.params.filter((p) => askable(p.key)).slice(0, 3).map((p) => `params.${p.key}`),
    ...available.metrics.filter((m) => askable(m.name)).slice(0, 2).map((m) => `metrics.${m.name}`),
  ];
}

// A picker of param and metric columns: checkboxes, a filter, saved on
// change. `onChange(columns)`.
export function columnPicker(available, columns, onChange) {
  const chosen = new Set(columns);
  const filter = el('input', { type: 'search', placeholder: 'find a column', class: 'column-filter', 'aria-label': 'find a column' });
  const list = el('div', { class: 'column-list' });
  const fill = () => {
    const q = filter.value.trim().toLowerCase();
    const row = (key, label, runs) => {
      const box = el('input', { type: 'checkbox', value: key, checked: chosen.has(key) });
      box.addEventListener('change', () => {
        if (box.checked) chosen.add(key); else chosen.delete(key);
        const next = [...chosen];
        setPref('columns', next);
        onChange(next);
      });
      return el('label', { class: 'column-choice' }, box, ' ', label, el('span', { class: 'muted' }, ` ${runs}`));
    };
    const groups = [
      ['Params', available.params.filter((p) => askable(p.key)).map((p) => [`params.${p.key}`, p.key, p.runs])],
      ['Metrics (last value)', available.metrics.filter((m) => askable(m.name)).map((m) => [`metrics.${m.name}`, m.name, m.runs])],
    ];
    list.replaceChildren(...groups.map(([title, items]) => {
      const shown = items.filter(([, label]) => !q || label.toLowerCase().includes(q)).slice(0, 200);
      return el('fieldset', {}, el('legend', {}, title),
        shown.length ? shown.map(([k, l, n]) => row(k, l, n)) : el('p', { class: 'muted' }, items.length ? 'none matches' : 'none in these runs'));
    }));
  };
  filter.addEventListener('input', fill);
  fill();
  return el('details', { class: 'columns', id: 'columns' }, el('summary', {}, 'Columns…'), el('div', { class: 'column-pop' }, filter, list));
}

// The widths the user gave columns by dragging their handles, by column
// id (`name`, `params.lr`), remembered.
function savedWidths() {
  const saved = pref('column-widths', null);
  const widths = new Map();
  if (saved && typeof saved === 'object' && !Array.isArray(saved)) {
    for (const [id, w] of Object.entries(saved)) {
      if (typeof w === 'number' && Number.isFinite(w)) widths.set(id, Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, Math.round(w))));
    }
  }
  return widths;
}

// The table. `query(offset, limit)` gives the list URL for a page with the
// filters and sort in force; `sort` is `key:order`; `onSort(key)`;
// `selected` (a Set of ids) and `onSelect()` for compare. Grouped, `groups`
// is a list of `{key, id, name, format, count, query(offset, limit)}` and
// `collapsed` a Set of the keys collapsed, changed here then told to
// `onCollapse()`.
export function runsTable({ query, columns, total, first = [], sort, onSort, selected, onSelect, groups = null, collapsed = new Set(), onCollapse = () => {}, onRows = () => {} }) {
  // The server's page (`/api/status` `limits`): the list's first page was
  // asked with the same limit, so page n holds rows n*PAGE onwards.
  const PAGE = pageLimit();
  const [sortKey, sortOrder] = [sort.slice(0, sort.lastIndexOf(':')), sort.slice(sort.lastIndexOf(':') + 1)];
  const extra = columns.map((c) => {
    const kind = c.startsWith('metrics.') ? 'metric' : 'param';
    const name = c.slice(c.indexOf('.') + 1);
    const value = (r) => (kind === 'metric' ? (r.metrics || {})[name] : (r.params || {})[name]);
    return { id: c, key: c, head: name, width: EXTRA_WIDTH, kind, text: (r) => cellValue(value(r)), cell: null };
  });
  const all = [...FIXED.map((c) => ({ ...c, kind: 'fixed' })), ...extra];
  const remembered = savedWidths();
  // A narrow window gets a narrower name column by default: it stays in
  // view while the others scroll past it.
  const nameWidth = Math.round(Math.min(280, Math.max(180, window.innerWidth / 4)));
  for (const c of all) if (c.id === 'name') c.width = nameWidth;
  const widths = all.map((c) => remembered.get(c.id) ?? c.width);

  const scroller = el('div', {
    class: 'table-scroll', id: 'runs-table', role: 'grid', 'aria-rowcount': total + 1,
    'aria-colcount': all.length + 1, 'aria-readonly': 'true', tabindex: 0,
  });
  // The one column template: the pick column, each column's width, and a
  // filler taking what is left of a wide screen (no cell sits in it).
  const layout = () => {
    scroller.style.setProperty('--columns', `${PICK}px ${widths.map((w) => `${w}px`).join(' ')} minmax(0, 1fr)`);
    scroller.style.setProperty('--table-width', `${PICK + widths.reduce((a, b) => a + b, 0)}px`);
    scroller.style.setProperty('--pick-width', `${PICK}px`);
  };
  layout();
  const remember = () => {
    const saved = savedWidths();
    all.forEach((c, j) => { if (widths[j] === c.width) saved.delete(c.id); else saved.set(c.id, widths[j]); });
    setPref('column-widths', Object.fromEntries(saved));
  };

  // A handle on a header's right edge: drag it (or focus it and press the
  // arrow keys) to size the column; the width is remembered on release.
  const handle = (j) => {
    const c = all[j];
    const grip = el('span', {
      class: 'col-resize', role: 'separator', tabindex: 0, 'aria-orientation': 'vertical',
      'aria-label': `resize column ${c.head}`, 'aria-valuemin': MIN_WIDTH, 'aria-valuemax': MAX_WIDTH, 'aria-valuenow': widths[j],
      title: 'drag to resize',
    });
    const set = (w) => {
      widths[j] = Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, Math.round(w)));
      grip.setAttribute('aria-valuenow', widths[j]);
      layout();
    };
    let from = null;
    grip.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      from = { x: e.clientX, width: widths[j] };
      grip.setPointerCapture(e.pointerId);
      grip.classList.add('dragging');
    });
    grip.addEventListener('pointermove', (e) => { if (from) set(from.width + e.clientX - from.x); });
    const end = () => {
      if (!from) return;
      from = null;
      grip.classList.remove('dragging');
      remember();
    };
    grip.addEventListener('pointerup', end);
    grip.addEventListener('pointercancel', end);
    grip.addEventListener('click', (e) => e.stopPropagation());
    grip.addEventListener('dblclick', () => { set(c.width); remember(); });
    grip.addEventListener('keydown', (e) => {
      const step = { ArrowLeft: -KEY_STEP, ArrowRight: KEY_STEP }[e.key];
      if (!step) return;
      e.preventDefault();
      set(widths[j] + step);
      remember();
    });
    return grip;
  };

  const header = el('div', { class: 'trow thead', role: 'row', 'aria-rowindex': 1 },
    el('div', { class: 'hcell pick sticky', role: 'columnheader', 'aria-colindex': 1 }, el('span', { class: 'visually-hidden' }, 'select')),
    all.map((c, j) => {
      const sorted = c.key && c.key === sortKey;
      const label = el(c.key ? 'button' : 'span', {
        type: c.key ? 'button' : undefined,
        class: `th ${c.kind}${sorted ? ` sorted ${sortOrder}` : ''}`,
        'data-key': c.key || '',
        title: c.key ? `sort by ${c.head}` : c.head,
      }, c.head, sorted ? (sortOrder === 'asc' ? ' ▲' : ' ▼') : '');
      if (c.key) label.addEventListener('click', () => onSort(c.key));
      return el('div', {
        class: `hcell ${c.kind}${c.id === 'name' ? ' name sticky' : ''}`,
        role: 'columnheader',
        'aria-colindex': j + 2,
        'aria-sort': sorted ? (sortOrder === 'asc' ? 'ascending' : 'descending') : undefined,
      }, label, handle(j));
    }));
  const body = el('div', { class: 'tbody', role: 'rowgroup' });
  scroller.append(header, body);

  // The grid's rows in segments: one per group (its header row, then its
  // runs), or one of every run. A segment's runs by their index in it.
  const segments = groups
    ? groups.map((g) => ({ group: g, count: g.count, query: g.query, rows: new Map(), asked: new Map(), ids: null }))
    : [{ group: null, count: total, query, rows: new Map(first.map((r, i) => [i, r])), asked: new Map([[0, Promise.resolve()]]), ids: null }];
  // Where each segment starts (its header row `head`, its first run
  // `start`), and how many rows the grid has, collapsed groups taking one.
  let rowTotal = 0;
  const place = () => {
    let at = 0;
    for (const s of segments) {
      s.head = s.group ? at++ : -1;
      s.start = at;
      at += s.group && collapsed.has(s.group.key) ? 0 : s.count;
    }
    rowTotal = at;
    scroller.setAttribute('aria-rowcount', rowTotal + 1);
    body.style.height = `${rowTotal * ROW}px`;
  };
  place();
  // The segment row `i` is in: its header, or its run at `offset`.
  const locate = (i) => {
    let [lo, hi] = [0, segments.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const s = segments[mid];
      if ((s.group ? s.head : s.start) <= i) lo = mid; else hi = mid - 1;
    }
    const s = segments[lo];
    return i === s.head ? { s, head: true } : { s, offset: i - s.start };
  };
  // A page of a segment's runs, asked for once.
  const loadPage = (s, n) => {
    if (!s.asked.has(n)) {
      const asking = api(s.query(n * PAGE, PAGE)).then((got) => {
        got.runs.forEach((r, j) => s.rows.set(n * PAGE + j, r));
        onRows(loadedIds());
      }, (err) => { s.asked.delete(n); throw err; });
      s.asked.set(n, asking);
    }
    return s.asked.get(n);
  };
  // The runs loaded, in the grid's order (j/k on a run page follow it).
  const loadedIds = () => segments.flatMap((s) => [...s.rows.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r.id));
  // Every run id of a segment (its pages asked for as needed, and kept).
  const idsOf = async (s) => {
    if (!s.ids) {
      const pageRuns = (n) => [...Array(PAGE).keys()].map((j) => s.rows.get(n * PAGE + j)).filter(Boolean);
      s.ids = await groupIds(s.count, async (n) => { await loadPage(s, n); return pageRuns(n); });
    }
    return s.ids;
  };

  const rowNode = (i, run) => {
    const box = el('input', { type: 'checkbox', 'data-focus': 'pick', 'aria-label': `select ${run.name} for comparison`, checked: selected.has(run.id) });
    box.addEventListener('change', () => {
      if (box.checked) selected.add(run.id); else selected.delete(run.id);
      onSelect();
      // The group's box says all, some or none.
      if (groups) paint(true);
    });
    const cells = all.map((c) => {
      const text = c.text(run);
      return el('div', {
        class: `td ${c.kind}${c.id === 'name' ? ' name sticky' : ''}`,
        role: 'gridcell',
        title: (c.tip ? c.tip(run) : text) || undefined,
      }, c.cell ? c.cell(run) : text);
    });
    const node = el('div', { class: 'trow', role: 'row', 'aria-rowindex': i + 2, 'data-id': run.id, 'data-index': i },
      el('div', { class: 'td pick sticky', role: 'gridcell' }, box),
      cells);
    node.style.top = `${i * ROW}px`;
    return node;
  };
  // A group's header row: its box selecting every run of it for compare,
  // and a button (Enter, Space, or ← and →) collapsing or expanding it.
  const groupNode = (i, s) => {
    const g = s.group;
    const open = !collapsed.has(g.key);
    const state = groupState({ ids: s.ids, loaded: [...s.rows.values()].map((r) => r.id), count: s.count }, selected);
    const box = el('input', {
      type: 'checkbox', class: 'group-pick', 'data-focus': 'pick', checked: state === 'all',
      'aria-label': `select the ${g.count} run${g.count === 1 ? '' : 's'} of ${g.name} for comparison`,
    });
    box.indeterminate = state === 'some';
    box.addEventListener('change', async () => {
      const on = box.checked;
      box.disabled = true;
      try {
        for (const id of await idsOf(s)) if (on) selected.add(id); else selected.delete(id);
      } catch (err) {
        status.textContent = `could not select ${g.name}: ${err.message}`;
      }
      onSelect();
      paint(true);
    });
    const setOpen = (want) => {
      if (want === !collapsed.has(g.key)) return;
      if (want) collapsed.delete(g.key); else collapsed.add(g.key);
      onCollapse();
      place();
      paint(true);
    };
    const toggle = el('button', {
      type: 'button', class: 'group-toggle', 'data-focus': 'toggle', 'aria-expanded': String(open),
      title: `${open ? 'collapse' : 'expand'} ${g.id ? `${g.name} (${g.id})` : g.name}`,
    }, el('span', { class: 'chevron', 'aria-hidden': 'true' }, open ? '▾' : '▸'), g.name);
    toggle.addEventListener('click', () => setOpen(!open));
    toggle.addEventListener('keydown', (e) => {
      const want = { ArrowRight: true, ArrowLeft: false }[e.key];
      if (want === undefined) return;
      e.preventDefault();
      e.stopPropagation();
      setOpen(want);
    });
    const node = el('div', {
      class: 'trow group', role: 'row', 'aria-rowindex': i + 2, 'aria-expanded': String(open),
      'data-group': g.key, 'data-index': i,
    },
    el('div', { class: 'td pick sticky', role: 'gridcell' }, box),
    el('div', { class: 'td group-cell', role: 'gridcell', 'aria-colspan': all.length }, groupHead(g, toggle)));
    node.style.top = `${i * ROW}px`;
    return node;
  };
  const fetchPage = (s, n) => {
    loadPage(s, n).then(() => paint(true), (err) => { status.textContent = `could not load rows: ${err.message}`; });
  };
  const status = el('p', { class: 'muted table-status', role: 'status' });
  let painted = '';
  // The rows in view (and a few around them) into the DOM; `force` after
  // something changed them (a page arrived, a group collapsed, a box).
  // Focus inside the rows is kept on the same control of the same row.
  function paint(force = false) {
    const top = Math.max(0, scroller.scrollTop - ROW);
    const height = scroller.clientHeight || 600;
    const from = Math.max(0, Math.floor(top / ROW) - 5);
    const to = Math.min(rowTotal, Math.ceil((top + height) / ROW) + 5);
    const key = `${from}-${to}`;
    if (key === painted && !force) return;
    painted = key;
    const nodes = [];
    for (let i = from; i < to; i++) {
      const at = locate(i);
      if (at.head) { nodes.push(groupNode(i, at.s)); continue; }
      const n = Math.floor(at.offset / PAGE);
      if (!at.s.asked.has(n)) fetchPage(at.s, n);
      const run = at.s.rows.get(at.offset);
      if (run) {
        nodes.push(rowNode(i, run));
      } else {
        const waiting = el('div', { class: 'trow loading', role: 'row', 'aria-rowindex': i + 2, 'data-index': i },
          el('div', { class: 'td muted', role: 'gridcell' }, 'loading…'));
        waiting.style.top = `${i * ROW}px`;
        nodes.push(waiting);
      }
    }
    const active = document.activeElement;
    const rowKey = (row) => (row.dataset.group !== undefined ? `group:${row.dataset.group}` : `run:${row.dataset.id || ''}`);
    const kept = active && body.contains(active) && active.dataset.focus
      ? { row: rowKey(active.closest('.trow')), part: active.dataset.focus } : null;
    body.replaceChildren(...nodes);
    if (kept) {
      const row = nodes.find((r) => rowKey(r) === kept.row);
      const target = row && row.querySelector(`[data-focus="${kept.part}"]`);
      if (target) target.focus({ preventScroll: true });
    }
  }
  scroller.addEventListener('scroll', () => requestAnimationFrame(() => paint()), { passive: true });
  // Painted once attached (the height is known then).
  requestAnimationFrame(() => paint());
  const node = el('div', { class: 'runs-table' }, scroller, status);
  return node;
}
