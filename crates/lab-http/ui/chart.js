// Metrics: series fetched from the metrics API (downsampled on the server
// into buckets with first x, last y, min and max), and an SVG line chart
// with a min/max band, a log scale, hover values and drag-to-zoom (a
// zoom asks the server for the range again, so detail is never lost).
// No dependencies.

import { el, svg, api } from './dom.js';

export const COLORS = ['#2457c5', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285'];
const POINTS = 800;

// One series of one run, from the API: { points: [[x, y]], band: [[x, min, max]], count }.
export async function fetchSeries(runId, name, { from, to } = {}) {
  const q = new URLSearchParams({ points: String(POINTS) });
  if (from !== undefined) q.set('from', String(from));
  if (to !== undefined) q.set('to', String(to));
  const s = await api(`/api/runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(name)}?${q}`);
  const points = [];
  const band = [];
  s.x.forEach((x, i) => {
    if (x === null) return;
    if (s.y[i] !== null) points.push([x, s.y[i]]);
    if (s.min[i] !== null && s.max[i] !== null) band.push([x, s.min[i], s.max[i]]);
  });
  return { points, band, count: s.count };
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

// series: [{ label, color, points: [[x, y], ...], band: [[x, min, max], ...] }]
export function lineChart(series, { log = false, xLabel = 'step', yLabel = '', onZoom } = {}) {
  const W = 760, H = 320, L = 64, R = 28, T = 14, B = 40;
  const wrap = el('div', { class: 'chart' });
  const usable = series.map((s) => ({
    ...s,
    points: log ? s.points.filter(([, y]) => y > 0) : s.points,
    band: (s.band || []).filter(([, lo]) => !log || lo > 0),
  })).filter((s) => s.points.length);
  if (!usable.length) {
    wrap.append(el('p', { class: 'muted' }, log ? 'No positive values to show on a log scale.' : 'No numeric values for this metric.'));
    return wrap;
  }
  const xs = usable.flatMap((s) => s.points.map((p) => p[0]));
  const ys = usable.flatMap((s) => s.points.map((p) => p[1]).concat(s.band.flatMap((b) => [b[1], b[2]])));
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
    // Where a bucket holds many points, the band shows its extremes, so a
    // spike never disappears in the downsampling.
    if (s.band.some(([, lo, hi]) => hi > lo)) {
      const upper = s.band.map(([x, , hi], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(hi).toFixed(1)}`).join('');
      const lower = s.band.slice().reverse().map(([x, lo]) => `L${px(x).toFixed(1)},${py(lo).toFixed(1)}`).join('');
      root.append(svg('path', { d: `${upper}${lower}Z`, fill: s.color, 'fill-opacity': 0.15, stroke: 'none', class: 'band' }));
    }
    // A lone point is a dot (a path of one point draws nothing).
    if (s.points.length === 1) {
      const [x, y] = s.points[0];
      root.append(svg('circle', { cx: px(x), cy: py(y), r: 4, fill: s.color, class: 'series-point' }));
    }
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
  if (onZoom) {
    // Drag across the chart to zoom into that x range.
    const toX = (event) => {
      const box = root.getBoundingClientRect();
      const sx = ((event.clientX - box.left) / box.width) * W;
      return x0 + ((sx - L) / (W - L - R)) * (x1 - x0);
    };
    const sel = svg('rect', { class: 'zoom-sel', y: T, height: H - T - B, x: -10, width: 0 });
    root.append(sel);
    let start = null;
    root.addEventListener('pointerdown', (event) => { start = toX(event); root.setPointerCapture(event.pointerId); });
    root.addEventListener('pointermove', (event) => {
      if (start === null) return;
      const now = toX(event);
      sel.setAttribute('x', px(Math.min(start, now)));
      sel.setAttribute('width', Math.abs(px(now) - px(start)));
    });
    root.addEventListener('pointerup', (event) => {
      if (start === null) return;
      const end = toX(event);
      const [a, b] = [Math.min(start, end), Math.max(start, end)];
      start = null;
      sel.setAttribute('width', 0);
      if (px(b) - px(a) > 6) onZoom(a, b);
    });
  }
  wrap.append(root, tip);
  if (usable.length > 1) {
    wrap.append(el('div', { class: 'legend' }, usable.map((s) => el('span', { class: 'legend-item' }, el('i', { class: 'swatch', 'data-color': s.color }), s.label))));
    wrap.querySelectorAll('.swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
  }
  return wrap;
}

// A metric picker + log toggle + chart, redrawn on change. runs:
// [{ id, label, color, metrics: [names] }]; each series comes from the
// metrics API, so a run of a million steps costs what 800 buckets cost.
export function metricsPanel(runs, { initial } = {}) {
  // In the order given (metrics with values first), each name once.
  const names = [...new Set(runs.flatMap((r) => r.metrics))];
  const panel = el('div', { class: 'metrics' });
  if (!names.length) {
    panel.append(el('p', { class: 'muted' }, 'No numeric metrics found.'));
    return panel;
  }
  const select = el('select', { 'aria-label': 'metric' }, names.map((n) => el('option', { value: n }, n)));
  // The metric most of the runs share comes first (for a comparison).
  const shared = (n) => runs.filter((r) => r.metrics.includes(n)).length;
  select.value = names.reduce((best, n) => (shared(n) > shared(best) ? n : best), names[0]);
  if (initial && names.includes(initial)) select.value = initial;
  const logBox = el('input', { type: 'checkbox' });
  const reset = el('button', { type: 'button', class: 'zoom-reset', hidden: true }, 'reset zoom');
  const status = el('span', { class: 'muted' });
  const holder = el('div');
  let zoom = {};
  let generation = 0;
  const draw = async () => {
    const metric = select.value;
    const mine = ++generation;
    reset.hidden = zoom.from === undefined;
    const series = await Promise.all(runs.filter((r) => r.metrics.includes(metric)).map(async (r) => {
      try {
        const s = await fetchSeries(r.id, metric, zoom);
        return { label: r.label, color: r.color, ...s };
      } catch (err) {
        return { label: r.label, color: r.color, points: [], band: [], count: 0, error: err };
      }
    }));
    if (mine !== generation) return;
    const total = series.reduce((n, s) => n + s.count, 0);
    status.textContent = `${total.toLocaleString()} points`;
    holder.replaceChildren(lineChart(series, {
      log: logBox.checked, xLabel: 'step', yLabel: metric,
      onZoom: (from, to) => { zoom = { from, to }; draw(); },
    }));
  };
  select.addEventListener('change', () => { zoom = {}; draw(); });
  logBox.addEventListener('change', draw);
  reset.addEventListener('click', () => { zoom = {}; draw(); });
  panel.append(el('div', { class: 'toolbar' }, el('label', {}, 'Metric ', select), el('label', {}, logBox, ' log scale'), reset, status), holder);
  draw();
  return panel;
}
