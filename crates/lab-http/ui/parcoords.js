// Parallel coordinates and a scatter beside them, over up to MAX_RUNS
// runs: chosen params and one metric as axes, the metric colouring the
// lines. The lines are drawn on a canvas in one pass (bucketed by colour,
// a path per bucket), redrawn in an animation frame when a brush moves;
// the axes, their labels, the brushes and the hovered line are an SVG
// overlay. Dragging vertically on an axis brushes a range (brushes on
// several axes AND together); a click on an axis, a double-click or
// Escape clears. The brushed runs can become the compare selection; a
// click on a line (or a scatter point) opens its run.
//
// Values: a param is numeric when every value present parses as a finite
// number (MLflow keeps params as text, "0.01"), else categorical: an
// ordinal axis, categories sorted and evenly spaced. A positive axis
// spanning more than two decades offers a log scale. A run without a
// value sits at the "missing" tick under that axis; the scatter leaves it
// out. The choice of axes is remembered per experiment (`pref`, keyed by
// the experiment's id, or one key for a compare selection).

import { el, svg, pref, setPref } from './dom.js';
import { store } from './store.js';
import { niceTicks } from './chart.js';

/// Most runs drawn at once.
export const MAX_RUNS = 2000;
// Default count of param axes on a first visit.
const DEFAULT_PARAMS = 5;
const PLOT_HEIGHT = 380;
const SCATTER_HEIGHT = 340;
// The plot's margins: axis names above, the missing tick below.
const TOP = 44;
const BOTTOM = 60;
const SIDE = 64;
// How far under an axis its "missing" tick sits.
const MISSING_GAP = 24;
// How near (px) a pointer must be to a line to pick it.
const PICK_PX = 6;
// Colour buckets of the metric scale: one canvas path each.
const BUCKETS = 32;
// A perceptual scale (viridis, stopped short of its palest yellow so a
// line stays visible on a light page).
const SCALE = ['#440154', '#414487', '#2a788e', '#22a884', '#7ad151', '#bddf26'];

// Reads numbers as people write them: "0.01", "1e-3", " 32 ".
const NUMBER = /^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$/;
const collator = new Intl.Collator(undefined, { numeric: true });

// A value as a finite number, or null.
export function numeric(v) {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && NUMBER.test(v)) {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

const isMissing = (v) => v === undefined || v === null || v === '' || (typeof v === 'number' && !Number.isFinite(v));
const asText = (v) => (typeof v === 'object' ? JSON.stringify(v) : String(v));

// A number as an axis or a tip writes it.
export function fmtValue(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(4)));
}

// The field's value in a row (`params.KEY` or `metrics.NAME`).
function valueOf(row, field) {
  const at = field.indexOf('.');
  const part = field.slice(0, at) === 'metrics' ? row.metrics : row.params;
  return part ? part[field.slice(at + 1)] : undefined;
}

// One axis over `rows`: each row's position `t` in [0, 1] (NaN when it
// has no value), its ticks, and how its values read.
export function makeAxis(field, rows, logWanted = false) {
  const kind = field.startsWith('metrics.') ? 'metric' : 'param';
  const name = field.slice(field.indexOf('.') + 1);
  const raw = rows.map((r) => valueOf(r, field));
  const present = raw.filter((v) => !isMissing(v));
  const t = new Float64Array(rows.length).fill(NaN);
  const axis = { field, kind, name, t, missing: rows.length - present.length, logable: false, scale: 'ordinal' };
  const numbers = present.map(numeric);
  if (present.length && numbers.every((n) => n !== null)) {
    const min = Math.min(...numbers);
    const max = Math.max(...numbers);
    axis.logable = min > 0 && max / min > 100;
    const log = logWanted && axis.logable;
    const f = log ? Math.log10 : (x) => x;
    const [lo, hi] = [f(min), f(max)];
    const pos = (n) => (hi === lo ? 0.5 : (f(n) - lo) / (hi - lo));
    raw.forEach((v, i) => { const n = isMissing(v) ? null : numeric(v); if (n !== null) t[i] = pos(n); });
    Object.assign(axis, {
      scale: log ? 'log' : 'linear', min, max,
      invert: (p) => (hi === lo ? min : log ? Math.pow(10, lo + p * (hi - lo)) : lo + p * (hi - lo)),
      text: (i) => (isMissing(raw[i]) ? 'missing' : fmtValue(numeric(raw[i]))),
    });
    let ticks;
    if (hi === lo) ticks = [min];
    else if (log) {
      ticks = [];
      for (let k = Math.ceil(lo); k <= Math.floor(hi); k++) ticks.push(Math.pow(10, k));
      if (ticks.length < 2) ticks = [min, ...ticks, max];
    } else ticks = niceTicks(min, max, 5);
    axis.ticks = ticks.map((v) => ({ t: pos(v), label: fmtValue(v) }));
  } else {
    const categories = [...new Set(present.map(asText))].sort(collator.compare);
    const index = new Map(categories.map((c, k) => [c, k]));
    const pos = (k) => (categories.length === 1 ? 0.5 : k / (categories.length - 1));
    raw.forEach((v, i) => { if (!isMissing(v)) t[i] = pos(index.get(asText(v))); });
    Object.assign(axis, {
      categories,
      text: (i) => (isMissing(raw[i]) ? 'missing' : asText(raw[i])),
      ticks: categories.map((c, k) => ({ t: pos(k), label: c })),
    });
  }
  return axis;
}

// The colour of a position on the metric's scale.
function colourAt(p) {
  const x = Math.min(1, Math.max(0, p)) * (SCALE.length - 1);
  const k = Math.min(SCALE.length - 2, Math.floor(x));
  const mix = (a, b, f) => Math.round(a + (b - a) * f);
  const rgb = (hex) => [1, 3, 5].map((j) => parseInt(hex.slice(j, j + 2), 16));
  const [a, b] = [rgb(SCALE[k]), rgb(SCALE[k + 1])];
  return `rgb(${mix(a[0], b[0], x - k)}, ${mix(a[1], b[1], x - k)}, ${mix(a[2], b[2], x - k)})`;
}
const BUCKET_COLOURS = Array.from({ length: BUCKETS }, (_, b) => colourAt(b / (BUCKETS - 1)));

// The axes chosen for `key`, remembered: `{params: [KEY], metric, x, y,
// log: [FIELD]}`, or null before the first choice.
function savedChoice(key) {
  const saved = pref(`parcoords:${key}`, null);
  if (!saved || typeof saved !== 'object' || !Array.isArray(saved.params)) return null;
  const text = (v) => (typeof v === 'string' ? v : '');
  return {
    params: saved.params.filter((p) => typeof p === 'string'),
    metric: text(saved.metric), x: text(saved.x), y: text(saved.y),
    log: Array.isArray(saved.log) ? saved.log.filter((f) => typeof f === 'string') : [],
  };
}

// A first choice from runs that carry every candidate field: the params
// that vary among them (the commonest first), then the others, and the
// commonest metric that varies (else the commonest).
export function defaultChoice(rows, available) {
  const varies = (field) => new Set(rows.map((r) => valueOf(r, field)).filter((v) => !isMissing(v)).map(asText)).size > 1;
  const has = (field) => rows.some((r) => !isMissing(valueOf(r, field)));
  const params = available.params.map((p) => p.key).filter((k) => has(`params.${k}`));
  const chosen = [...params.filter((k) => varies(`params.${k}`)), ...params.filter((k) => !varies(`params.${k}`))].slice(0, DEFAULT_PARAMS);
  const present = available.metrics.map((m) => m.name).filter((m) => has(`metrics.${m}`));
  const metrics = [...present.filter((m) => varies(`metrics.${m}`)), ...present.filter((m) => !varies(`metrics.${m}`))];
  const metric = metrics[0] || (available.metrics[0] && available.metrics[0].name) || '';
  return { params: chosen, metric, x: chosen[0] || '', y: metric, log: [] };
}

// The fields a choice needs from the API.
export function choiceFields(choice) {
  const params = [...new Set([...choice.params, choice.x].filter(Boolean))].map((k) => `params.${k}`);
  const metrics = [...new Set([choice.metric, choice.y].filter(Boolean))].map((m) => `metrics.${m}`);
  return [...params, ...metrics];
}

// The panel. `key`: what the choice is remembered by (`experiment:ID`,
// `selection`); `available`: `/api/columns`' shape, `{params: [{key,
// runs}], metrics: [{name, runs}]}`; `load(fields)` → `{rows, total}`,
// each row `{id, name, params, metrics}`; `first(rows)`: a default choice
// when none is remembered; `cap`: the most runs compare takes;
// `onLeave(fn)`: the view's (page.onLeave), to drop the resize listener.
export function parcoordsPanel({ key, available, load, firstChoice, cap, onLeave, title = 'Parallel coordinates' }) {
  let choice = savedChoice(key);
  let rows = [];
  let total = 0;
  let axes = [];
  let metricAxis = null;
  // The scatter's two axes (none without a param and a metric for it).
  let scatter = [];
  // Brushes by field: [t0, t1] with t0 <= t1 (0 the axis's bottom).
  const brushes = new Map();
  let mask = new Uint8Array(0);
  let brushedCount = 0;
  let frame = 0;
  let loading = 0;

  const summary = el('p', { id: 'pc-summary', class: 'muted pc-summary', role: 'status' }, 'Loading runs…');
  const select = el('button', { type: 'button', id: 'pc-select', class: 'primary', disabled: true }, 'Brush an axis to pick runs');
  const clear = el('button', { type: 'button', id: 'pc-clear', disabled: true }, 'Clear brushes');
  const chosenNote = el('span', { id: 'pc-chosen', class: 'pc-chosen', role: 'status' });
  const canvas = el('canvas', { class: 'pc-canvas', 'aria-hidden': 'true' });
  const overlay = svg('svg', { class: 'pc-overlay', 'aria-hidden': 'true' });
  const tip = el('div', { class: 'tip', hidden: true });
  const plot = el('div', {
    class: 'pc-plot', id: 'pc-plot', role: 'img', tabindex: 0, 'aria-describedby': 'pc-summary',
    title: 'drag on an axis to brush; Escape or double-click clears',
  }, canvas, overlay, tip);
  plot.style.height = `${PLOT_HEIGHT}px`;
  const legend = el('div', { class: 'pc-legend', id: 'pc-legend' });
  const scatterHolder = el('div', { class: 'pc-scatter', id: 'pc-scatter' });
  const table = el('details', { class: 'pc-data', id: 'pc-data' }, el('summary', {}, 'The values as a table'), el('div', { class: 'pc-table-holder' }));
  table.addEventListener('toggle', () => fillTable());
  const controls = el('div', { class: 'toolbar pc-controls' });

  // The chooser: param axes (checkboxes under a filter), the metric axis,
  // the scatter's two fields, a log scale for each axis that may take one.
  const paramPicker = () => {
    const chosen = new Set(choice.params);
    const filter = el('input', { type: 'search', placeholder: 'find a param', class: 'column-filter', 'aria-label': 'find a param' });
    const list = el('fieldset', { class: 'pc-param-list' }, el('legend', {}, 'Param axes'));
    const fill = () => {
      const q = filter.value.trim().toLowerCase();
      const items = available.params.filter((p) => !p.key.includes(',') && (!q || p.key.toLowerCase().includes(q))).slice(0, 200);
      list.replaceChildren(el('legend', {}, 'Param axes'), ...(items.length ? items.map((p) => {
        const box = el('input', { type: 'checkbox', value: `params.${p.key}`, checked: chosen.has(p.key) });
        box.addEventListener('change', () => {
          const params = box.checked ? [...choice.params, p.key] : choice.params.filter((k) => k !== p.key);
          // The scatter's x leaves with its axis, for the first one left.
          const x = !choice.x || (!box.checked && choice.x === p.key) ? params[0] || '' : choice.x;
          change({ ...choice, params, x });
        });
        return el('label', { class: 'column-choice' }, box, ' ', p.key, el('span', { class: 'muted' }, ` ${p.runs}`));
      }) : [el('p', { class: 'muted' }, available.params.length ? 'none matches' : 'these runs have no params')]));
    };
    filter.addEventListener('input', fill);
    fill();
    const names = choice.params.length ? choice.params.join(', ') : 'none';
    return el('details', { class: 'columns', id: 'pc-axes' },
      el('summary', { title: 'choose the param axes' }, `Axes: ${names}`),
      el('div', { class: 'column-pop' }, filter, list));
  };
  const fieldSelect = (id, label, options, value, onChange) => {
    const box = el('select', { id },
      el('option', { value: '', selected: !value }, '(none)'),
      options.map((o) => el('option', { value: o, selected: o === value }, o)));
    box.addEventListener('change', () => onChange(box.value));
    return el('label', {}, label, ' ', box);
  };
  const drawControls = () => {
    const paramKeys = available.params.map((p) => p.key).filter((k) => !k.includes(','));
    const metricNames = available.metrics.map((m) => m.name).filter((m) => !m.includes(','));
    const logs = [...axes, ...scatter].filter((a, i, all) => a.logable && all.findIndex((b) => b.field === a.field) === i);
    // The param list stays open over a change made in it, the focus on
    // the same box.
    const was = controls.querySelector('#pc-axes');
    const open = !!was && was.open;
    const focused = was && was.contains(document.activeElement) ? document.activeElement.value : null;
    controls.replaceChildren(
      paramPicker(),
      fieldSelect('pc-metric', 'Metric axis (colour)', metricNames, choice.metric, (m) => change({ ...choice, metric: m, y: !choice.y || choice.y === choice.metric ? m : choice.y })),
      fieldSelect('pc-x', 'Scatter x (param)', paramKeys, choice.x, (x) => change({ ...choice, x })),
      fieldSelect('pc-y', 'Scatter y (metric)', metricNames, choice.y, (y) => change({ ...choice, y })),
      ...logs.map((a) => {
        const box = el('input', { type: 'checkbox', 'data-field': a.field, checked: choice.log.includes(a.field) });
        box.addEventListener('change', () => {
          brushes.delete(a.field);
          change({ ...choice, log: box.checked ? [...choice.log, a.field] : choice.log.filter((f) => f !== a.field) }, false);
        });
        return el('label', { class: 'pc-log' }, box, ` log ${a.name}`);
      }));
    const picker = controls.querySelector('#pc-axes');
    picker.open = open;
    const again = focused && [...picker.querySelectorAll('input[type=checkbox]')].find((b) => b.value === focused);
    if (again) again.focus({ preventScroll: true });
  };

  // A new choice: remembered, the values asked for again when it needs
  // other fields, everything drawn again.
  const change = async (next, refetch = true) => {
    const before = choiceFields(choice).join(',');
    choice = next;
    setPref(`parcoords:${key}`, choice);
    if (refetch && choiceFields(choice).join(',') !== before) await fetchRows();
    else rebuild();
  };

  const fetchRows = async () => {
    const mine = ++loading;
    summary.textContent = 'Loading runs…';
    try {
      const got = await load(choiceFields(choice));
      if (mine !== loading) return;
      rows = got.rows.slice(0, MAX_RUNS);
      total = got.total;
    } catch (err) {
      if (mine !== loading) return;
      summary.textContent = `The runs could not be loaded: ${err.message}`;
      return;
    }
    rebuild();
  };

  function scatterAxes() {
    if (!choice.x || !choice.y) return [];
    return [makeAxis(`params.${choice.x}`, rows, choice.log.includes(`params.${choice.x}`)), makeAxis(`metrics.${choice.y}`, rows, choice.log.includes(`metrics.${choice.y}`))];
  }

  // Axes and everything over them made again (new rows or a new choice).
  const rebuild = () => {
    const fields = [...choice.params.map((k) => `params.${k}`), ...(choice.metric ? [`metrics.${choice.metric}`] : [])];
    axes = fields.map((f) => makeAxis(f, rows, choice.log.includes(f)));
    metricAxis = choice.metric ? axes[axes.length - 1] : null;
    scatter = scatterAxes();
    for (const f of [...brushes.keys()]) if (!fields.includes(f)) brushes.delete(f);
    plot.setAttribute('aria-label', `Parallel coordinates of ${rows.length} runs over ${axes.map((a) => a.name).join(', ') || 'no axes'}${metricAxis ? `, coloured by ${metricAxis.name}` : ''}`);
    drawControls();
    drawLegend();
    computeMask();
    drawAxes();
    schedule();
    drawScatter();
    sayBrushed();
  };

  // Which runs every brush holds.
  const computeMask = () => {
    mask = new Uint8Array(rows.length).fill(1);
    for (const [field, [t0, t1]] of brushes) {
      const axis = axes.find((a) => a.field === field);
      if (!axis) continue;
      for (let i = 0; i < rows.length; i++) {
        const t = axis.t[i];
        if (!(t >= t0 && t <= t1)) mask[i] = 0;
      }
    }
    brushedCount = brushes.size ? mask.reduce((n, m) => n + m, 0) : 0;
  };
  const brushedIds = () => rows.filter((_, i) => mask[i]).map((r) => r.id);

  // The plot's geometry at its current width.
  const geometry = () => {
    const width = Math.max(320, plot.clientWidth || 800);
    const bottom = PLOT_HEIGHT - BOTTOM;
    const n = axes.length;
    const xs = axes.map((_, j) => (n === 1 ? width / 2 : SIDE + (j * (width - 2 * SIDE)) / (n - 1)));
    return { width, top: TOP, bottom, xs, missing: bottom + MISSING_GAP };
  };
  const yOf = (g, axis, i) => {
    const t = axis.t[i];
    return Number.isNaN(t) ? g.missing : g.bottom - t * (g.bottom - g.top);
  };

  // The lines, in one pass: the runs outside the brushes faint, then the
  // rest by colour bucket, one path per bucket.
  const drawLines = () => {
    frame = 0;
    const g = geometry();
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(g.width * dpr) || canvas.height !== Math.round(PLOT_HEIGHT * dpr)) {
      canvas.width = Math.round(g.width * dpr);
      canvas.height = Math.round(PLOT_HEIGHT * dpr);
      canvas.style.width = `${g.width}px`;
      canvas.style.height = `${PLOT_HEIGHT}px`;
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.width, PLOT_HEIGHT);
    if (!axes.length || !rows.length) return;
    const line = (i) => {
      if (axes.length === 1) {
        const y = yOf(g, axes[0], i);
        ctx.moveTo(g.xs[0] - 8, y);
        ctx.lineTo(g.xs[0] + 8, y);
        return;
      }
      ctx.moveTo(g.xs[0], yOf(g, axes[0], i));
      for (let j = 1; j < axes.length; j++) ctx.lineTo(g.xs[j], yOf(g, axes[j], i));
    };
    const brushing = brushes.size > 0;
    ctx.lineWidth = rows.length > 500 ? 1 : 1.5;
    if (brushing) {
      ctx.globalAlpha = 1;
      ctx.strokeStyle = 'rgba(128, 128, 128, 0.16)';
      ctx.beginPath();
      for (let i = 0; i < rows.length; i++) if (!mask[i]) line(i);
      ctx.stroke();
    }
    const shown = brushing ? brushedCount : rows.length;
    ctx.globalAlpha = Math.max(0.3, Math.min(0.9, 1.3 - 0.27 * Math.log10(Math.max(1, shown))));
    const buckets = Array.from({ length: BUCKETS + 1 }, () => []);
    for (let i = 0; i < rows.length; i++) {
      if (brushing && !mask[i]) continue;
      const t = metricAxis ? metricAxis.t[i] : NaN;
      buckets[Number.isNaN(t) ? BUCKETS : Math.round(t * (BUCKETS - 1))].push(i);
    }
    buckets.forEach((list, b) => {
      if (!list.length) return;
      ctx.strokeStyle = b === BUCKETS ? '#868e96' : BUCKET_COLOURS[b];
      ctx.beginPath();
      for (const i of list) line(i);
      ctx.stroke();
    });
    ctx.globalAlpha = 1;
  };
  // Drawn in the next animation frame, once however often asked.
  const schedule = () => { if (!frame) frame = requestAnimationFrame(() => { drawLines(); drawBrushes(); }); };

  // The overlay: a background that takes the pointer, each axis with its
  // ticks, name, missing tick and a wide transparent strip to brush on;
  // then the brushes and the hovered line.
  const brushLayer = svg('g', { class: 'pc-brushes' });
  const hoverLine = svg('path', { class: 'pc-hover', d: '' });
  const drawAxes = () => {
    const g = geometry();
    overlay.setAttribute('width', g.width);
    overlay.setAttribute('height', PLOT_HEIGHT);
    overlay.setAttribute('viewBox', `0 0 ${g.width} ${PLOT_HEIGHT}`);
    const spacing = axes.length > 1 ? g.xs[1] - g.xs[0] : g.width;
    const fit = (text, px) => {
      const most = Math.max(4, Math.floor(px / 7));
      return text.length > most ? `${text.slice(0, most - 1)}…` : text;
    };
    const parts = [svg('rect', { class: 'pc-back', x: 0, y: 0, width: g.width, height: PLOT_HEIGHT })];
    if (!axes.length) {
      parts.push(svg('text', { class: 'pc-empty', x: g.width / 2, y: PLOT_HEIGHT / 2, 'text-anchor': 'middle' }, 'Choose param axes and a metric above.'));
    }
    axes.forEach((a, j) => {
      const x = g.xs[j];
      const ticks = a.ticks.length > 24 ? a.ticks.filter((_, k) => k % Math.ceil(a.ticks.length / 24) === 0) : a.ticks;
      parts.push(svg('g', {
        class: `pc-axis ${a.kind}`, 'data-field': a.field, 'data-x': x.toFixed(2), 'data-top': g.top, 'data-bottom': g.bottom,
        'data-missing-y': g.missing, 'data-scale': a.scale,
        ...(a.scale !== 'ordinal' ? { 'data-min': a.min, 'data-max': a.max } : {}),
      },
      svg('line', { class: 'pc-axis-line', x1: x, x2: x, y1: g.top, y2: g.bottom }),
      ticks.map((tk) => {
        const y = g.bottom - tk.t * (g.bottom - g.top);
        return svg('g', { class: 'pc-tick' },
          svg('line', { x1: x - 4, x2: x, y1: y, y2: y }),
          svg('text', { x: x - 7, y: y + 4, 'text-anchor': 'end' }, fit(tk.label, Math.min(spacing / 2, 140))));
      }),
      a.missing ? svg('g', { class: 'pc-tick pc-missing' },
        svg('line', { x1: x - 4, x2: x + 4, y1: g.missing, y2: g.missing }),
        svg('text', { x: x - 7, y: g.missing + 4, 'text-anchor': 'end' }, `missing (${a.missing})`)) : null,
      svg('text', { class: `pc-name ${a.kind}`, x, y: g.top - 24, 'text-anchor': 'middle' },
        svg('title', {}, `${a.field}${a.scale === 'log' ? ' (log scale)' : ''}`),
        fit(a.name, spacing - 8) + (a === metricAxis ? ' ●' : '')),
      svg('text', { class: 'pc-scale', x, y: g.top - 10, 'text-anchor': 'middle' }, a.scale === 'log' ? 'log' : a.scale === 'ordinal' ? 'categories' : ''),
      svg('rect', { class: 'pc-hit', 'data-field': a.field, x: x - 12, y: g.top - 4, width: 24, height: g.bottom - g.top + 8 })));
    });
    parts.push(brushLayer, hoverLine);
    overlay.replaceChildren(...parts);
  };
  const drawBrushes = () => {
    const g = geometry();
    const rects = [];
    axes.forEach((a, j) => {
      const b = brushes.get(a.field);
      if (!b) return;
      const [y0, y1] = [g.bottom - b[1] * (g.bottom - g.top), g.bottom - b[0] * (g.bottom - g.top)];
      rects.push(svg('rect', { class: 'pc-brush', 'data-field': a.field, x: g.xs[j] - 6, y: y0, width: 12, height: Math.max(1, y1 - y0) }));
    });
    brushLayer.replaceChildren(...rects);
  };

  // What the brushes hold, said in words (and on the select button).
  const rangeText = (a, [t0, t1]) => {
    if (a.scale === 'ordinal') return `${a.name} ∈ {${a.categories.filter((_, k) => { const t = a.categories.length === 1 ? 0.5 : k / (a.categories.length - 1); return t >= t0 && t <= t1; }).join(', ')}}`;
    return `${a.name} ${fmtValue(a.invert(t0))}–${fmtValue(a.invert(t1))}`;
  };
  const sayBrushed = () => {
    const cut = total > rows.length ? ` (the first ${rows.length.toLocaleString()} of ${total.toLocaleString()})` : '';
    const ranges = axes.filter((a) => brushes.has(a.field)).map((a) => rangeText(a, brushes.get(a.field)));
    const missing = axes.some((a) => a.missing) ? ' Runs without a value sit at the “missing” tick under the axis; the scatter leaves them out.' : '';
    summary.textContent = `${rows.length.toLocaleString()} runs${cut}` + (brushes.size ? `, ${brushedCount.toLocaleString()} brushed: ${ranges.join(' and ')}.` : '.') + missing;
    sayButtons();
    fillTable();
  };
  const sayButtons = () => {
    clear.disabled = !brushes.size;
    select.disabled = !brushes.size || !brushedCount || brushedCount > cap;
    select.textContent = !brushes.size ? 'Brush an axis to pick runs'
      : !brushedCount ? 'No run in the brushed ranges'
        : brushedCount > cap ? `${brushedCount.toLocaleString()} brushed: compare takes ${cap} at most, narrow the brushes`
          : `Select these ${brushedCount} runs`;
  };

  const drawLegend = () => {
    if (!metricAxis || metricAxis.scale === 'ordinal') {
      legend.replaceChildren(metricAxis ? el('span', { class: 'muted' }, `${metricAxis.name} has no numbers to colour by.`) : '');
      return;
    }
    if (metricAxis.min === metricAxis.max) {
      legend.replaceChildren(el('span', { class: 'muted' }, `colour: ${metricAxis.name} is ${fmtValue(metricAxis.min)} in every run shown`));
      return;
    }
    const id = 'pc-gradient';
    const width = 180;
    legend.replaceChildren(el('span', { class: 'muted' }, `colour: ${metricAxis.name}${metricAxis.scale === 'log' ? ' (log)' : ''} `),
      el('span', { class: 'mono' }, fmtValue(metricAxis.min)),
      svg('svg', { width, height: 12, class: 'pc-ramp', role: 'img', 'aria-label': `colour scale of ${metricAxis.name} from ${fmtValue(metricAxis.min)} to ${fmtValue(metricAxis.max)}` },
        svg('defs', {}, svg('linearGradient', { id }, SCALE.map((c, k) => svg('stop', { offset: k / (SCALE.length - 1), 'stop-color': c })))),
        svg('rect', { x: 0, y: 0, width, height: 12, fill: `url(#${id})` })),
      el('span', { class: 'mono' }, fmtValue(metricAxis.max)),
      metricAxis.missing ? el('span', { class: 'muted' }, ` · grey: no ${metricAxis.name}`) : '');
  };

  // The run whose line passes nearest (within PICK_PX) to a point of the
  // overlay, or -1.
  const nearest = (px, py) => {
    if (!axes.length) return -1;
    const g = geometry();
    let best = -1;
    let bestD = PICK_PX;
    const brushing = brushes.size > 0;
    // Between two axes: the segment there; outside them, the nearest axis.
    let j = 0;
    while (j < axes.length - 2 && px > g.xs[j + 1]) j++;
    for (let i = 0; i < rows.length; i++) {
      let d;
      if (axes.length === 1 || px <= g.xs[0] || px >= g.xs[axes.length - 1]) {
        const k = px <= g.xs[0] ? 0 : axes.length - 1;
        if (Math.abs(px - g.xs[k]) > (axes.length === 1 ? 8 : PICK_PX)) return -1;
        d = Math.abs(py - yOf(g, axes[k], i));
      } else {
        const [x0, y0, x1, y1] = [g.xs[j], yOf(g, axes[j], i), g.xs[j + 1], yOf(g, axes[j + 1], i)];
        const y = y0 + ((px - x0) / (x1 - x0)) * (y1 - y0);
        // The distance to the segment, near enough for a line this flat.
        d = Math.abs(py - y) / Math.hypot(1, (y1 - y0) / (x1 - x0));
      }
      // A brushed line wins over a faint one at the same distance.
      if (brushing && !mask[i]) d += 0.5;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  };
  const point = (e) => {
    const r = overlay.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const showHover = (i, px, py) => {
    if (i < 0) {
      hoverLine.setAttribute('d', '');
      tip.hidden = true;
      plot.classList.remove('pointing');
      return;
    }
    const g = geometry();
    const pts = axes.length === 1 ? [[g.xs[0] - 8, yOf(g, axes[0], i)], [g.xs[0] + 8, yOf(g, axes[0], i)]] : axes.map((a, j) => [g.xs[j], yOf(g, a, i)]);
    hoverLine.setAttribute('d', `M${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join('L')}`);
    tip.replaceChildren(el('div', { class: 'tip-head' }, rows[i].name),
      ...axes.map((a) => el('div', { class: 'tip-row' }, `${a.name}: ${a.text(i)}`)),
      el('div', { class: 'muted' }, 'click to open'));
    tip.hidden = false;
    tip.style.left = `${Math.min(px + 14, g.width - 200)}px`;
    tip.style.top = `${Math.max(0, py - 10)}px`;
    plot.classList.add('pointing');
  };
  let hoverFrame = 0;
  overlay.addEventListener('pointermove', (e) => {
    if (drag) return;
    const [px, py] = point(e);
    if (e.target.closest && e.target.closest('.pc-hit')) { showHover(-1); return; }
    cancelAnimationFrame(hoverFrame);
    hoverFrame = requestAnimationFrame(() => showHover(nearest(px, py), px, py));
  });
  overlay.addEventListener('pointerleave', () => { cancelAnimationFrame(hoverFrame); showHover(-1); });
  overlay.addEventListener('click', (e) => {
    if (e.target.closest && e.target.closest('.pc-hit')) return;
    const [px, py] = point(e);
    const i = nearest(px, py);
    if (i >= 0) location.hash = `#/runs/${encodeURIComponent(rows[i].id)}`;
  });
  overlay.addEventListener('dblclick', (e) => { e.preventDefault(); clearBrushes(); });

  // Brushing: a drag on an axis's strip sets its range as it goes; a
  // press without a drag clears that axis.
  let drag = null;
  const tOf = (g, y) => Math.min(1, Math.max(0, (g.bottom - y) / (g.bottom - g.top)));
  overlay.addEventListener('pointerdown', (e) => {
    const hit = e.target.closest && e.target.closest('.pc-hit');
    if (!hit || e.button !== 0) return;
    e.preventDefault();
    plot.focus({ preventScroll: true });
    showHover(-1);
    const g = geometry();
    drag = { field: hit.dataset.field, from: point(e)[1], g, moved: false, before: brushes.get(hit.dataset.field) };
    window.addEventListener('pointermove', onDrag);
    window.addEventListener('pointerup', endDrag);
    window.addEventListener('pointercancel', endDrag);
  });
  const onDrag = (e) => {
    if (!drag) return;
    const y = point(e)[1];
    if (Math.abs(y - drag.from) < 3 && !drag.moved) return;
    drag.moved = true;
    const [a, b] = [tOf(drag.g, drag.from), tOf(drag.g, y)];
    brushes.set(drag.field, [Math.min(a, b), Math.max(a, b)]);
    computeMask();
    sayButtons();
    schedule();
  };
  const endDrag = (e) => {
    if (!drag) return;
    if (e && e.type === 'pointerup') onDrag(e);
    if (!drag.moved) brushes.delete(drag.field);
    stopDrag();
    brushed();
  };
  // The brushes changed: every view of them again.
  const brushed = () => {
    computeMask();
    drawBrushes();
    schedule();
    sayBrushed();
    paintScatter();
  };
  const stopDrag = () => {
    drag = null;
    window.removeEventListener('pointermove', onDrag);
    window.removeEventListener('pointerup', endDrag);
    window.removeEventListener('pointercancel', endDrag);
  };
  const clearBrushes = () => {
    if (drag) stopDrag();
    if (!brushes.size) return;
    brushes.clear();
    brushed();
  };
  plot.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); clearBrushes(); } });
  clear.addEventListener('click', clearBrushes);
  select.addEventListener('click', () => {
    const ids = brushedIds();
    if (!ids.length || ids.length > cap) return;
    store.selected.clear();
    for (const id of ids) store.selected.add(id);
    chosenNote.replaceChildren(`${ids.length} runs are the compare selection now. `,
      el('a', { href: `#/compare/${ids.map(encodeURIComponent).join(',')}`, id: 'pc-compare', class: 'button' }, `Compare these ${ids.length}`));
  });

  // The scatter: one param against one metric, each run a point (those
  // without both values left out), the brushed runs in colour.
  let scatterPoints = [];
  const drawScatter = () => {
    scatterPoints = [];
    const [xa, ya] = scatter;
    if (!xa || !ya) {
      scatterHolder.replaceChildren(el('p', { class: 'muted' }, 'Choose a param and a metric for the scatter.'));
      return;
    }
    const width = Math.max(260, scatterHolder.clientWidth || 420);
    const [left, right, top, bottom] = [62, 14, 14, SCATTER_HEIGHT - 44];
    // A point at either end of a range stays clear of the axes.
    const inset = (t) => 0.04 + 0.92 * t;
    const sx = (t) => left + inset(t) * (width - left - right);
    const sy = (t) => bottom - inset(t) * (bottom - top);
    const fit = (text) => (text.length > 12 ? `${text.slice(0, 11)}…` : text);
    const xTicks = xa.ticks.length > 8 ? xa.ticks.filter((_, k) => k % Math.ceil(xa.ticks.length / 8) === 0) : xa.ticks;
    const grid = [
      ...xTicks.map((tk) => svg('g', { class: 'pc-tick' }, svg('line', { class: 'pc-grid', x1: sx(tk.t), x2: sx(tk.t), y1: top, y2: bottom }),
        svg('text', { x: sx(tk.t), y: bottom + 16, 'text-anchor': 'middle' }, fit(tk.label)))),
      ...ya.ticks.map((tk) => svg('g', { class: 'pc-tick' }, svg('line', { class: 'pc-grid', x1: left, x2: width - right, y1: sy(tk.t), y2: sy(tk.t) }),
        svg('text', { x: left - 6, y: sy(tk.t) + 4, 'text-anchor': 'end' }, fit(tk.label)))),
    ];
    const dots = [];
    let leftOut = 0;
    rows.forEach((r, i) => {
      const [tx, ty] = [xa.t[i], ya.t[i]];
      if (Number.isNaN(tx) || Number.isNaN(ty)) { leftOut++; return; }
      const tc = metricAxis ? metricAxis.t[i] : NaN;
      const dot = svg('circle', {
        class: 'pc-pt', cx: sx(tx).toFixed(1), cy: sy(ty).toFixed(1), r: rows.length > 500 ? 3 : 4.5, 'data-id': r.id,
        fill: Number.isNaN(tc) ? '#868e96' : colourAt(tc),
      }, svg('title', {}, `${r.name}: ${xa.name} ${xa.text(i)}, ${ya.name} ${ya.text(i)}`));
      scatterPoints.push([i, dot]);
      dots.push(dot);
    });
    const chart = svg('svg', {
      class: 'pc-scatter-svg', width, height: SCATTER_HEIGHT, viewBox: `0 0 ${width} ${SCATTER_HEIGHT}`, role: 'img',
      'aria-label': `Scatter of ${ya.name} against ${xa.name}: ${dots.length} runs${leftOut ? `, ${leftOut} without both values left out` : ''}`,
    },
    svg('g', { class: 'pc-grid-lines' }, grid),
    svg('line', { class: 'pc-axis-line', x1: left, x2: left, y1: top, y2: bottom }),
    svg('line', { class: 'pc-axis-line', x1: left, x2: width - right, y1: bottom, y2: bottom }),
    svg('text', { class: 'pc-name param', x: left + (width - left - right) / 2, y: SCATTER_HEIGHT - 6, 'text-anchor': 'middle' }, `${xa.name}${xa.scale === 'log' ? ' (log)' : ''}`),
    svg('text', { class: 'pc-name metric', x: 12, y: top + (bottom - top) / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${top + (bottom - top) / 2})` }, `${ya.name}${ya.scale === 'log' ? ' (log)' : ''}`),
    svg('g', { class: `pc-dots${rows.length > 500 ? ' pc-dense' : ''}` }, dots));
    chart.addEventListener('click', (e) => {
      const dot = e.target.closest && e.target.closest('.pc-pt');
      if (dot) location.hash = `#/runs/${encodeURIComponent(dot.dataset.id)}`;
    });
    scatterHolder.replaceChildren(el('h3', {}, `${ya.name} against ${xa.name}`), chart,
      ...(leftOut ? [el('p', { class: 'muted' }, `${leftOut} run${leftOut === 1 ? '' : 's'} without both values left out.`)] : []));
    paintScatter();
  };
  // The brushed runs stand out in the scatter: the rest go faint, the
  // brushed drawn last (on top).
  const paintScatter = () => {
    const brushing = brushes.size > 0;
    const on = [];
    for (const [i, dot] of scatterPoints) {
      const hit = brushing && mask[i] === 1;
      dot.classList.toggle('brushed', hit);
      dot.classList.toggle('faint', brushing && !hit);
      if (hit) on.push(dot);
    }
    const layer = scatterHolder.querySelector('.pc-dots');
    if (layer) for (const dot of on) layer.append(dot);
  };

  // The text alternative: every run's values and whether it is brushed
  // (made when opened).
  const fillTable = () => {
    const holder = table.querySelector('.pc-table-holder');
    if (!table.open) { holder.replaceChildren(); return; }
    const shown = [...axes];
    if (choice.x && !shown.some((a) => a.field === `params.${choice.x}`)) shown.push(makeAxis(`params.${choice.x}`, rows));
    if (choice.y && !shown.some((a) => a.field === `metrics.${choice.y}`)) shown.push(makeAxis(`metrics.${choice.y}`, rows));
    holder.replaceChildren(el('table', { class: 'params', id: 'pc-table' },
      el('thead', {}, el('tr', {}, el('th', {}, 'run'), shown.map((a) => el('th', { class: a.kind }, a.name)), el('th', {}, 'brushed'))),
      el('tbody', {}, rows.map((r, i) => el('tr', { class: brushes.size && mask[i] ? 'brushed' : '', 'data-id': r.id },
        el('th', {}, el('a', { href: `#/runs/${encodeURIComponent(r.id)}` }, r.name)),
        shown.map((a) => el('td', { class: 'mono' }, a.text(i))),
        el('td', {}, brushes.size && mask[i] ? 'yes' : ''))))));
  };

  const resize = () => { drawAxes(); schedule(); drawScatter(); };
  window.addEventListener('resize', resize);
  onLeave(() => { window.removeEventListener('resize', resize); cancelAnimationFrame(frame); cancelAnimationFrame(hoverFrame); stopDrag(); });

  const node = el('section', { class: 'panel parcoords', id: 'parcoords' },
    el('h2', {}, title),
    controls,
    el('div', { class: 'toolbar pc-actions' }, select, clear, chosenNote),
    summary,
    el('div', { class: 'pc-grid' },
      el('figure', { class: 'pc-figure' }, plot, legend,
        el('figcaption', { class: 'muted' }, 'Drag up or down on an axis to brush a range; brushes on several axes must all hold. A click on an axis, a double-click or Escape clears. A click on a line opens its run.')),
      scatterHolder),
    table);
  // Drawn once in the page (its width is known then).
  (async () => {
    // A remembered choice keeps only the fields still offered.
    if (choice) {
      const params = new Set(available.params.map((p) => p.key));
      const metrics = new Set(available.metrics.map((m) => m.name));
      choice.params = choice.params.filter((k) => params.has(k));
      if (!metrics.has(choice.metric)) choice.metric = '';
      if (!params.has(choice.x)) choice.x = '';
      if (!metrics.has(choice.y)) choice.y = '';
      if (!choice.params.length && !choice.metric) choice = null;
    }
    if (!choice) {
      try { choice = await firstChoice(); } catch { choice = defaultChoice([], available); }
      setPref(`parcoords:${key}`, choice);
    }
    await fetchRows();
  })();
  return node;
}
