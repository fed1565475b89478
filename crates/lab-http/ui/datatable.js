// A run's tables (a W&B `Table`): each a JSON artifact the API lists in
// `run.tables` with its size and signed `url`. Fetched only when at most
// MAX_BYTES (else a link), parsed, and drawn as its columns and first
// MAX_ROWS rows; every cell is text (objects as compact JSON), through
// dom.js's el, which only appends text nodes.

import { el, artifactHead, size } from './dom.js';

// Largest table fetched and drawn; a larger one is a link.
const MAX_BYTES = 16 * 1024 * 1024;
// Most rows drawn.
const MAX_ROWS = 1000;
// Most columns drawn (and cells of a row): a table of one row of
// millions of cells is no page to build.
const MAX_COLUMNS = 200;
// Longest cell text shown (the cell's title holds no more either).
const MAX_CELL = 2000;

// The "Tables" panel's contents for `tables` (run.tables), or null when
// the run has none.
export function tablesView(tables) {
  if (!tables || !tables.length) return null;
  return el('div', { id: 'tables' }, tables.map(tableView));
}

function tableView(table) {
  const title = `${table.key || table.name}${table.step !== null && table.step !== undefined ? ` @ step ${table.step}` : ''}`;
  const body = el('div', { class: 'datatable-body' });
  const node = el('div', { class: 'meta-item datatable', 'data-name': table.name }, el('h3', {}, title), body);
  if (!table.url || table.size === null || table.size === undefined) {
    body.append(el('p', { class: 'muted datatable-why' }, `${table.name}: not served (not a regular file of the run, or not readable).`));
    return node;
  }
  if (table.size > MAX_BYTES) {
    body.append(el('p', { class: 'muted datatable-why' }, `${table.name} is ${size(table.size)}, over the ${size(MAX_BYTES)} the page draws: `,
      el('a', { href: table.url, download: table.name.split('/').pop() }, 'download it')));
    return node;
  }
  body.append(el('p', { class: 'muted' }, 'Loading…'));
  // No more than MAX_BYTES asked for, whatever the file holds now (it may
  // have grown since it was listed).
  artifactHead(table, MAX_BYTES)
    .then(({ text, total }) => {
      if (total > MAX_BYTES) throw new Error(`it is now over the ${size(MAX_BYTES)} the page draws`);
      return text;
    })
    .then((text) => body.replaceChildren(render(table, text)))
    .catch((e) => body.replaceChildren(el('p', { class: 'muted datatable-why' }, `${table.name} could not be read: ${e.message || e}`)));
  return node;
}

function cellText(value) {
  let text;
  if (value === null || value === undefined) text = '';
  else if (typeof value === 'object') {
    try { text = JSON.stringify(value); } catch { text = String(value); }
  } else text = String(value);
  return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL)}…` : text;
}

// A W&B table file: {"columns": [...], "data": [[...], ...]}.
function render(table, text) {
  let doc;
  try { doc = JSON.parse(text); } catch {
    return el('p', { class: 'muted datatable-why' }, `${table.name} is not JSON.`);
  }
  const columns = doc && Array.isArray(doc.columns) ? doc.columns : null;
  const rows = doc && Array.isArray(doc.data) ? doc.data : null;
  if (!columns || !rows) {
    return el('p', { class: 'muted datatable-why' }, `${table.name} is not a table (no "columns" and "data" lists).`);
  }
  const shown = rows.slice(0, MAX_ROWS);
  const more = columns.length > MAX_COLUMNS ? `, the first ${MAX_COLUMNS} drawn` : '';
  const note = rows.length > MAX_ROWS
    ? `first ${MAX_ROWS.toLocaleString('en-US')} of ${rows.length.toLocaleString('en-US')} rows`
    : `${rows.length.toLocaleString('en-US')} row${rows.length === 1 ? '' : 's'}`;
  return el('div', {},
    el('p', { class: 'muted datatable-count' }, `${columns.length} column${columns.length === 1 ? '' : 's'}${more}, ${note}`),
    el('div', { class: 'datatable-scroll' },
      el('table', { class: 'params datatable-table' },
        el('thead', {}, el('tr', {}, columns.slice(0, MAX_COLUMNS).map((c) => el('th', { class: 'mono' }, cellText(c))))),
        el('tbody', {}, shown.map((row) => el('tr', {},
          (Array.isArray(row) ? row : [row]).slice(0, MAX_COLUMNS).map((v) => el('td', { class: 'mono' }, cellText(v)))))))));
}
