// Metrics: parsing metrics.jsonl / metrics.csv, and an SVG line chart with
// a log scale and hover values. No dependencies.

import { el, svg } from './dom.js';

const STEP_KEYS = ['step', 'global_step', 'iteration', 'iter', 'epoch', 'time', 't'];
export const COLORS = ['#2457c5', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285'];

// Returns { x: 'step', columns: [...numeric metric names], rows: [{...}] }.
export function parseMetrics(name, text) {
  let rows = [];
  if (name.endsWith('.jsonl')) {
    for (const line of text.split('\n')) {
      const trimmed = line.trim();
      if (!trimmed) continue;
      try {
        const row = JSON.parse(trimmed);
        if (row && typeof row === 'object' && !Array.isArray(row)) rows.push(row);
      } catch { /* a torn last line while a run writes: skip it */ }
    }
  } else {
    const lines = text.split('\n').filter((l) => l.trim());
    const header = (lines.shift() || '').split(',').map((h) => h.trim());
    rows = lines.map((line) => {
      const cells = line.split(',');
      const row = {};
      header.forEach((h, i) => { const n = Number(cells[i]); row[h] = cells[i] === undefined || cells[i].trim() === '' || Number.isNaN(n) ? cells[i] : n; });
      return row;
    });
  }
  const numeric = new Set();
  for (const row of rows.slice(0, 200)) {
    for (const [k, v] of Object.entries(row)) if (typeof v === 'number' && Number.isFinite(v)) numeric.add(k);
  }
  const x = STEP_KEYS.find((k) => numeric.has(k)) || null;
  const columns = [...numeric].filter((k) => k !== x);
  return { x, columns, rows };
}

export function seriesOf(parsed, metric) {
  const points = [];
  parsed.rows.forEach((row, i) => {
    const y = row[metric];
    const xv = parsed.x ? row[parsed.x] : i;
    if (typeof y === 'number' && Number.isFinite(y) && typeof xv === 'number') points.push([xv, y]);
  });
  return points;
}

function niceTicks(min, max, count) {
  if (min === max) { min -= 1; max += 1; }
  const span = max - min;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
  const err = (count * step0) / span;
  const step = step0 * (err <= 0.15 ? 10 : err <= 0.35 ? 5 : err <= 0.75 ? 2 : 1);
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const fmt = (v) => {
  const a = Math.abs(v);
  if (a !== 0 && a < 1e-3) return v.toExponential(2);
  if (a >= 1e9) return `${Number((v / 1e9).toPrecision(3))}G`;
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return Number(v.toPrecision(4)).toString();
};

// 1, 2, 5 × 10^k inside [lo, hi] (log10 units), or just the decades when
// there are many.
function logTicks(lo, hi) {
  const ticks = [];
  for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
    for (const m of hi - lo > 4 ? [1] : [1, 2, 5]) {
      const v = m * Math.pow(10, k);
      if (Math.log10(v) >= lo && Math.log10(v) <= hi) ticks.push(v);
    }
  }
  return ticks;
}

// series: [{ label, color, points: [[x, y], ...] }]
export function lineChart(series, { log = false, xLabel = 'step', yLabel = '' } = {}) {
  const W = 760, H = 320, L = 64, R = 28, T = 14, B = 40;
  const wrap = el('div', { class: 'chart' });
  const usable = series.map((s) => ({ ...s, points: log ? s.points.filter(([, y]) => y > 0) : s.points }))
    .filter((s) => s.points.length);
  if (!usable.length) {
    wrap.append(el('p', { class: 'muted' }, log ? 'No positive values to show on a log scale.' : 'No numeric values for this metric.'));
    return wrap;
  }
  const xs = usable.flatMap((s) => s.points.map((p) => p[0]));
  const ys = usable.flatMap((s) => s.points.map((p) => p[1]));
  const ty = (y) => (log ? Math.log10(y) : y);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys.map(ty)), Math.max(...ys.map(ty))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (ty(y) - y0) / (y1 - y0)) * (H - T - B);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': `${yLabel} by ${xLabel}` });
  const grid = svg('g', { class: 'grid' });
  for (const t of niceTicks(x0, x1, 6)) {
    grid.append(svg('line', { x1: px(t), x2: px(t), y1: T, y2: H - B }), svg('text', { x: px(t), y: H - B + 16, 'text-anchor': 'middle' }, fmt(t)));
  }
  const yTicks = log ? logTicks(y0, y1) : niceTicks(y0, y1, 6);
  for (const yValue of yTicks) {
    if (ty(yValue) < y0 || ty(yValue) > y1) continue;
    grid.append(svg('line', { x1: L, x2: W - R, y1: py(yValue), y2: py(yValue) }), svg('text', { x: L - 6, y: py(yValue) + 4, 'text-anchor': 'end' }, fmt(yValue)));
  }
  grid.append(svg('text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-label' }, xLabel));
  root.append(grid);
  for (const s of usable) {
    const d = s.points.map(([x, y], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
    root.append(svg('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 1.8, class: 'series' }));
  }
  const cursor = svg('line', { class: 'cursor', y1: T, y2: H - B, x1: -10, x2: -10 });
  const dots = usable.map((s) => svg('circle', { r: 3.5, fill: s.color, cx: -10, cy: -10 }));
  root.append(cursor, ...dots);
  const tip = el('div', { class: 'tip', hidden: true });
  root.addEventListener('pointermove', (event) => {
    const box = root.getBoundingClientRect();
    const sx = ((event.clientX - box.left) / box.width) * W;
    const x = x0 + ((sx - L) / (W - L - R)) * (x1 - x0);
    const lines = [];
    usable.forEach((s, i) => {
      let best = s.points[0];
      for (const p of s.points) if (Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
      dots[i].setAttribute('cx', px(best[0]));
      dots[i].setAttribute('cy', py(best[1]));
      lines.push(`${s.label}: ${fmt(best[1])} @ ${xLabel} ${fmt(best[0])}`);
    });
    cursor.setAttribute('x1', sx); cursor.setAttribute('x2', sx);
    tip.replaceChildren(...lines.map((l) => el('div', {}, l)));
    tip.hidden = false;
    tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 220)}px`;
    tip.style.top = `${event.clientY - box.top + 12}px`;
  });
  root.addEventListener('pointerleave', () => { tip.hidden = true; });
  wrap.append(root, tip);
  if (usable.length > 1) {
    wrap.append(el('div', { class: 'legend' }, usable.map((s) => el('span', { class: 'legend-item' }, el('i', { class: 'swatch', 'data-color': s.color }), s.label))));
    wrap.querySelectorAll('.swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
  }
  return wrap;
}

// A metric picker + log toggle + chart, redrawn on change.
export function metricsPanel(datasets, { initial } = {}) {
  // datasets: [{ label, color, parsed }]
  const names = [...new Set(datasets.flatMap((d) => d.parsed.columns))];
  const panel = el('div', { class: 'metrics' });
  if (!names.length) {
    panel.append(el('p', { class: 'muted' }, 'No numeric metrics found.'));
    return panel;
  }
  const select = el('select', { 'aria-label': 'metric' }, names.map((n) => el('option', { value: n }, n)));
  if (initial && names.includes(initial)) select.value = initial;
  const logBox = el('input', { type: 'checkbox' });
  const holder = el('div');
  const draw = () => {
    const metric = select.value;
    const xLabel = datasets.find((d) => d.parsed.x)?.parsed.x || 'row';
    holder.replaceChildren(lineChart(datasets.map((d) => ({ label: d.label, color: d.color, points: seriesOf(d.parsed, metric) })), { log: logBox.checked, xLabel, yLabel: metric }));
  };
  select.addEventListener('change', draw);
  logBox.addEventListener('change', draw);
  panel.append(el('div', { class: 'toolbar' }, el('label', {}, 'Metric ', select), el('label', {}, logBox, ' log scale')), holder);
  draw();
  return panel;
}
