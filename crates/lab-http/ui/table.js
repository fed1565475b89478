// The runs table: one row per run, a column per chosen param and metric
// (the metric's last value), sort by any column on the server, rows
// selected for compare. Only the rows in view are in the DOM, and pages of
// the list are asked for as they come into view, so 10,000 runs cost what
// a screenful costs.

import { el, api, date, pref, setPref } from './dom.js';
import { fmt } from './chart.js';

const ROW = 34;
const PAGE = 500;

// Fixed columns: key (as `sort=` names it, or null when the server cannot
// sort by it), header, cell.
const FIXED = [
  ['name', 'name', (r) => el('a', { href: `#/runs/${encodeURIComponent(r.id)}`, class: 'row-title', title: r.id }, r.title)],
  ['format', 'format', (r) => el('span', { class: 'badge format' }, r.format)],
  ['status', 'status', (r) => (r.status && r.status !== 'unknown' ? r.status : '')],
  ['created', 'created', (r) => el('span', { class: 'muted' }, date(r.created))],
  [null, 'tags', (r) => (r.tags || []).join(', ')],
];

const cellValue = (v) => {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return fmt(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
};

// Whether a name can be a column: `fields=` is comma-separated, so a key
// holding a comma cannot be asked for.
const askable = (name) => !name.includes(',');

// The columns the user chose (`params.KEY`, `metrics.NAME`), remembered.
export function chosenColumns(available) {
  const saved = pref('columns', null);
  if (Array.isArray(saved)) return saved.filter((c) => typeof c === 'string' && askable(c)).slice(0, 32);
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

// The table. `query(offset, limit)` gives the list URL for a page with the
// filters and sort in force; `sort` is `key:order`; `onSort(key)`;
// `selected` (a Set of ids) and `onSelect()` for compare.
export function runsTable({ query, columns, total, first, sort, onSort, selected, onSelect }) {
  const [sortKey, sortOrder] = [sort.slice(0, sort.lastIndexOf(':')), sort.slice(sort.lastIndexOf(':') + 1)];
  const extra = columns.map((c) => [c, c.replace(/^(params|metrics)\./, ''), c.startsWith('metrics.') ? 'metric' : 'param']);
  const all = [...FIXED.map(([key, head]) => [key, head, 'fixed']), ...extra];
  const template = `2.2rem minmax(12rem, 2fr) 7rem 6rem 9rem minmax(6rem, 1fr) ${extra.map(() => 'minmax(6rem, 1fr)').join(' ')}`;
  const rows = new Map(); // index -> run
  first.forEach((r, i) => rows.set(i, r));
  const asked = new Set([0]);
  const header = el('div', { class: 'trow thead', role: 'row' },
    el('span', { role: 'columnheader' }),
    all.map(([key, head, kind]) => {
      const sorted = key && key === sortKey;
      const cell = el(key ? 'button' : 'span', {
        type: key ? 'button' : undefined,
        class: `th ${kind}${sorted ? ` sorted ${sortOrder}` : ''}`,
        role: 'columnheader',
        'data-key': key || '',
        title: key ? `sort by ${head}` : undefined,
        'aria-sort': sorted ? (sortOrder === 'asc' ? 'ascending' : 'descending') : undefined,
      }, head, sorted ? (sortOrder === 'asc' ? ' ▲' : ' ▼') : '');
      if (key) cell.addEventListener('click', () => onSort(key));
      return cell;
    }));
  header.style.gridTemplateColumns = template;
  const body = el('div', { class: 'tbody', role: 'rowgroup' });
  body.style.height = `${total * ROW}px`;
  const scroller = el('div', { class: 'table-scroll', id: 'runs-table', role: 'table', 'aria-rowcount': total, tabindex: 0 }, header, body);
  const rowNode = (i, run) => {
    const box = el('input', { type: 'checkbox', 'aria-label': `select ${run.title} for comparison`, checked: selected.has(run.id) });
    box.addEventListener('change', () => {
      if (box.checked) selected.add(run.id); else selected.delete(run.id);
      onSelect();
    });
    const values = extra.map(([key, , kind]) => {
      const name = key.slice(key.indexOf('.') + 1);
      const v = kind === 'metric' ? (run.metrics || {})[name] : (run.params || {})[name];
      return el('span', { class: `td ${kind}`, title: cellValue(v) }, cellValue(v));
    });
    const node = el('div', { class: 'trow', role: 'row', 'data-id': run.id, 'data-index': i },
      el('span', { class: 'td pick' }, box),
      FIXED.map(([, , cell]) => el('span', { class: 'td' }, cell(run))),
      values);
    node.style.gridTemplateColumns = template;
    node.style.top = `${i * ROW}px`;
    return node;
  };
  const fetchPage = async (page) => {
    if (asked.has(page)) return;
    asked.add(page);
    try {
      const got = await api(query(page * PAGE, PAGE));
      got.runs.forEach((r, j) => rows.set(page * PAGE + j, r));
      paint();
    } catch (err) {
      asked.delete(page);
      status.textContent = `could not load rows: ${err.message}`;
    }
  };
  const status = el('p', { class: 'muted table-status', role: 'status' });
  let painted = '';
  const paint = () => {
    const top = Math.max(0, scroller.scrollTop - ROW);
    const height = scroller.clientHeight || 600;
    const from = Math.max(0, Math.floor(top / ROW) - 5);
    const to = Math.min(total, Math.ceil((top + height) / ROW) + 5);
    for (let page = Math.floor(from / PAGE); page <= Math.floor(Math.max(from, to - 1) / PAGE); page++) {
      if (!asked.has(page)) fetchPage(page);
    }
    const key = `${from}-${to}-${rows.size}`;
    if (key === painted) return;
    painted = key;
    const nodes = [];
    for (let i = from; i < to; i++) {
      const run = rows.get(i);
      if (run) {
        nodes.push(rowNode(i, run));
      } else {
        const waiting = el('div', { class: 'trow loading', 'data-index': i }, el('span', { class: 'td muted' }, 'loading…'));
        waiting.style.top = `${i * ROW}px`;
        nodes.push(waiting);
      }
    }
    body.replaceChildren(...nodes);
  };
  scroller.addEventListener('scroll', () => requestAnimationFrame(paint), { passive: true });
  // Painted once attached (the height is known then).
  requestAnimationFrame(paint);
  const node = el('div', { class: 'runs-table' }, scroller, status);
  return node;
}
