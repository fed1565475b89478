// Metrics: series fetched from the metrics API (downsampled on the server
// into buckets with first x, last y, min and max), and SVG line charts with
// a min/max band, EMA smoothing (the raw line faint behind), a log scale,
// x by step, wall time or time since the run's first point, hover values
// of every run at that x, click to pick an x, and drag-to-zoom (a zoom asks
// the server for the range again, so detail is never lost). A panel grid
// shows several metrics at once; a live panel asks again every few seconds
// with If-None-Match, so an unchanged series costs a 304. No dependencies.

import { el, svg, apiConditional, pref, setPref } from './dom.js';

// Twenty colours that stay apart on light and dark backgrounds.
export const COLORS = [
  '#2457c5', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285', '#e67700', '#5c940d',
  '#364fc7', '#a61e4d', '#087f5b', '#5f3dc4', '#1971c2', '#c92a2a', '#66a80f', '#9c36b5',
  '#0c8599', '#e8590c', '#495057', '#f08c00',
];
const POINTS = 800;
/// How often a live panel asks again.
const LIVE_MS = 3000;

// One series of one run, from the API: { points: [[x, y]], band: [[x, min, max]], count, etag }.
// With the ETag of what the caller holds, a 304 returns `null`.
export async function fetchSeries(runId, name, { from, to, x = 'step' } = {}, etag) {
  const q = new URLSearchParams({ points: String(POINTS) });
  if (from !== undefined) q.set('from', String(from));
  if (to !== undefined) q.set('to', String(to));
  if (x === 'wall') q.set('x', 'wall');
  const got = await apiConditional(`/api/runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(name)}?${q}`, etag);
  if (got.status === 304) return null;
  const s = got.data;
  const points = [];
  const band = [];
  s.x.forEach((xv, i) => {
    if (xv === null) return;
    if (s.y[i] !== null) points.push([xv, s.y[i]]);
    if (s.min[i] !== null && s.max[i] !== null) band.push([xv, s.min[i], s.max[i]]);
  });
  return { points, band, count: s.count, etag: got.etag };
}

// TensorBoard's smoothing: an exponential moving average, debiased so the
// first points are not pulled towards zero. `weight` in [0, 1).
export function ema(points, weight) {
  if (!weight) return points;
  let last = 0;
  let norm = 0;
  return points.map(([x, y]) => {
    if (!Number.isFinite(y)) return [x, y];
    last = last * weight + (1 - weight) * y;
    norm = norm * weight + (1 - weight);
    return [x, last / norm];
  });
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

export const fmt = (v) => {
  const a = Math.abs(v);
  if (a !== 0 && a < 1e-3) return v.toExponential(2);
  if (a >= 1e9) return `${Number((v / 1e9).toPrecision(3))}G`;
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return Number(v.toPrecision(4)).toString();
};

// How an x value reads, per axis.
const X_AXES = {
  step: { label: 'step', format: fmt },
  wall: { label: 'wall time', format: (s) => new Date(s * 1000).toISOString().slice(11, 19) },
  relative: {
    label: 'time since start',
    format: (s) => (Math.abs(s) < 120 ? `${Number(s.toPrecision(3))}s` : Math.abs(s) < 7200 ? `${Number((s / 60).toPrecision(3))}m` : `${Number((s / 3600).toPrecision(3))}h`),
  },
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

// The point of `points` (sorted by x) nearest to `x`.
function nearest(points, x) {
  let lo = 0;
  let hi = points.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < x) lo = mid; else hi = mid;
  }
  return Math.abs(points[lo][0] - x) <= Math.abs(points[hi][0] - x) ? points[lo] : points[hi];
}

// series: [{ label, color, points: [[x, y], ...], band: [[x, min, max], ...] }]
export function lineChart(series, { log = false, axis = 'step', yLabel = '', smoothing = 0, onZoom, onPick } = {}) {
  const W = 760, H = 320, L = 64, R = 28, T = 14, B = 40;
  const { label: xLabel, format: xFmt } = X_AXES[axis] || X_AXES.step;
  const wrap = el('div', { class: 'chart' });
  const usable = series.map((s) => {
    const points = log ? s.points.filter(([, y]) => y > 0) : s.points;
    return {
      ...s,
      points,
      shown: ema(points, smoothing),
      band: smoothing ? [] : (s.band || []).filter(([, lo]) => !log || lo > 0),
    };
  }).filter((s) => s.points.length);
  if (!usable.length) {
    wrap.append(el('p', { class: 'muted' }, log ? 'No positive values to show on a log scale.' : 'No numeric values for this metric.'));
    return wrap;
  }
  const xs = usable.flatMap((s) => s.points.map((p) => p[0]));
  const ys = usable.flatMap((s) => s.points.map((p) => p[1]).concat(s.band.flatMap((b) => [b[1], b[2]])));
  const ty = (y) => (log ? Math.log10(y) : y);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const x of xs) { if (x < x0) x0 = x; if (x > x1) x1 = x; }
  for (const y of ys) { const t = ty(y); if (t < y0) y0 = t; if (t > y1) y1 = t; }
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (ty(y) - y0) / (y1 - y0)) * (H - T - B);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': `${yLabel} by ${xLabel}` });
  const grid = svg('g', { class: 'grid' });
  for (const t of niceTicks(x0, x1, 6)) {
    grid.append(svg('line', { x1: px(t), x2: px(t), y1: T, y2: H - B }), svg('text', { x: px(t), y: H - B + 16, 'text-anchor': 'middle' }, xFmt(t)));
  }
  const yTicks = log ? logTicks(y0, y1) : niceTicks(y0, y1, 6);
  for (const yValue of yTicks) {
    if (ty(yValue) < y0 || ty(yValue) > y1) continue;
    grid.append(svg('line', { x1: L, x2: W - R, y1: py(yValue), y2: py(yValue) }), svg('text', { x: L - 6, y: py(yValue) + 4, 'text-anchor': 'end' }, fmt(yValue)));
  }
  grid.append(svg('text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-label' }, xLabel));
  root.append(grid);
  const path = (points) => points.map(([x, y], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
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
    if (smoothing) {
      root.append(svg('path', { d: path(s.points), fill: 'none', stroke: s.color, 'stroke-width': 1.2, 'stroke-opacity': 0.25, class: 'series raw' }));
      root.append(svg('path', { d: path(s.shown), fill: 'none', stroke: s.color, 'stroke-width': 1.8, class: 'series smoothed', 'data-label': s.label }));
    } else {
      root.append(svg('path', { d: path(s.points), fill: 'none', stroke: s.color, 'stroke-width': 1.8, class: 'series', 'data-label': s.label }));
    }
  }
  const cursor = svg('line', { class: 'cursor', y1: T, y2: H - B, x1: -10, x2: -10 });
  const dots = usable.map((s) => svg('circle', { r: 3.5, fill: s.color, cx: -10, cy: -10 }));
  root.append(cursor, ...dots);
  const tip = el('div', { class: 'tip', hidden: true });
  const toX = (event) => {
    const box = root.getBoundingClientRect();
    const sx = ((event.clientX - box.left) / box.width) * W;
    return x0 + ((sx - L) / (W - L - R)) * (x1 - x0);
  };
  // Every run's value at the x under the pointer (its nearest point, the
  // smoothed value when smoothing, the raw one beside it), highest first.
  const hover = (x) => {
    const rows = usable.map((s, i) => {
      const shown = nearest(s.shown, x);
      const raw = nearest(s.points, x);
      dots[i].setAttribute('cx', px(shown[0]));
      dots[i].setAttribute('cy', py(shown[1]));
      return { s, shown, raw };
    }).sort((a, b) => b.shown[1] - a.shown[1]);
    // The x of the point nearest the pointer (a step is a whole step).
    const at = rows.reduce((best, r) => (Math.abs(r.shown[0] - x) < Math.abs(best - x) ? r.shown[0] : best), rows[0].shown[0]);
    cursor.setAttribute('x1', px(at)); cursor.setAttribute('x2', px(at));
    tip.replaceChildren(el('div', { class: 'tip-head' }, `${xLabel} ${xFmt(at)}`),
      ...rows.map(({ s, shown, raw }) => el('div', { class: 'tip-row' }, el('i', { class: 'swatch', 'data-color': s.color }),
        `${s.label}: ${fmt(shown[1])}${smoothing ? ` (raw ${fmt(raw[1])})` : ''}`)));
    tip.querySelectorAll('.swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
  };
  root.addEventListener('pointermove', (event) => {
    hover(toX(event));
    const box = root.getBoundingClientRect();
    tip.hidden = false;
    tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 260)}px`;
    tip.style.top = `${event.clientY - box.top + 12}px`;
  });
  root.addEventListener('pointerleave', () => { tip.hidden = true; });
  // A click picks an x (the step scrubber follows it); a drag zooms.
  const sel = svg('rect', { class: 'zoom-sel', y: T, height: H - T - B, x: -10, width: 0 });
  root.append(sel);
  let start = null;
  root.addEventListener('pointerdown', (event) => {
    start = { x: toX(event), sx: event.clientX };
    try { root.setPointerCapture(event.pointerId); } catch { /* a pointer that is not active (synthetic) */ }
  });
  root.addEventListener('pointermove', (event) => {
    if (start === null || !onZoom) return;
    const now = toX(event);
    sel.setAttribute('x', px(Math.min(start.x, now)));
    sel.setAttribute('width', Math.abs(px(now) - px(start.x)));
  });
  root.addEventListener('pointerup', (event) => {
    if (start === null) return;
    const end = toX(event);
    const moved = Math.abs(event.clientX - start.sx);
    const [a, b] = [Math.min(start.x, end), Math.max(start.x, end)];
    start = null;
    sel.setAttribute('width', 0);
    if (moved < 4) { if (onPick) onPick(end); } else if (onZoom && px(b) - px(a) > 6) onZoom(a, b);
  });
  wrap.append(root, tip);
  // Many runs (a comparison) have their legend above the panels.
  if (usable.length > 1 && usable.length <= 6) {
    wrap.append(el('div', { class: 'legend' }, usable.map((s) => el('span', { class: 'legend-item' }, el('i', { class: 'swatch', 'data-color': s.color }), s.label))));
    wrap.querySelectorAll('.legend .swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
  }
  // For the end-to-end test and the console: what this chart drew.
  wrap.chart = { series: usable.map((s) => ({ label: s.label, points: s.points.length })), smoothing, axis, log };
  return wrap;
}

// One metric of several runs, drawn with the grid's shared settings.
// runs: [{ id, label, color, metrics: [names] }]; settings: { smoothing,
// axis, log }. Returns { node, draw, refresh, stop }.
function metricPanel(runs, names, metric, settings, { onPick, onRemove, live, onGrow }) {
  const select = el('select', { 'aria-label': 'metric', class: 'panel-metric' }, names.map((n) => el('option', { value: n, selected: n === metric }, n)));
  const reset = el('button', { type: 'button', class: 'zoom-reset', hidden: true }, 'reset zoom');
  const remove = onRemove ? el('button', { type: 'button', class: 'panel-remove', title: 'remove this panel', 'aria-label': 'remove panel' }, '✕') : null;
  const status = el('span', { class: 'muted panel-status' });
  const holder = el('div', { class: 'panel-chart' }, el('p', { class: 'muted' }, 'loading…'));
  const node = el('div', { class: 'metric-panel' }, el('div', { class: 'toolbar' }, select, status, el('span', { class: 'grow' }), reset, remove), holder);
  let zoom = {};
  let generation = 0;
  // Per run: the last series fetched, its ETag, and (for time since start)
  // its first wall time.
  let cache = new Map();
  const starts = new Map();
  const shift = (id) => (settings.axis === 'relative' ? (starts.get(id) || 0) : 0);
  const query = (id) => {
    const x = settings.axis === 'step' ? 'step' : 'wall';
    if (zoom.from === undefined) return { x };
    return { x, from: zoom.from + shift(id), to: zoom.to + shift(id) };
  };
  const mine = () => runs.filter((r) => r.metrics.includes(select.value));
  // Fetches what changed (all, or only what a 304 does not cover) and
  // redraws when anything did. Returns whether it redrew.
  const load = async (conditional) => {
    const metric = select.value;
    const gen = ++generation;
    let changed = !conditional;
    const fetched = await Promise.all(mine().map(async (r) => {
      const held = cache.get(r.id);
      try {
        const s = await fetchSeries(r.id, metric, query(r.id), conditional && held ? held.etag : undefined);
        if (s === null) return [r.id, held];
        // Asked again and answered with more than was held: seen growing.
        if (conditional && held && !held.error && onGrow) onGrow();
        changed = true;
        return [r.id, s];
      } catch (err) {
        changed = true;
        return [r.id, { points: [], band: [], count: 0, error: err }];
      }
    }));
    if (gen !== generation) return false;
    cache = new Map(fetched);
    if (settings.axis !== 'step' && zoom.from === undefined) {
      for (const [id, s] of cache) if (s.points.length && !starts.has(id)) starts.set(id, s.points[0][0]);
    }
    if (changed) draw();
    return changed;
  };
  const draw = () => {
    reset.hidden = zoom.from === undefined;
    const series = mine().map((r) => {
      const s = cache.get(r.id) || { points: [], band: [], count: 0 };
      const d = shift(r.id);
      const moved = (p) => (d ? p.map(([x, ...rest]) => [x - d, ...rest]) : p);
      return { label: r.label, color: r.color, points: moved(s.points), band: moved(s.band), count: s.count, error: s.error };
    });
    const failed = series.filter((s) => s.error);
    const total = series.reduce((n, s) => n + s.count, 0);
    status.textContent = `${total.toLocaleString()} points${failed.length ? ` · ${failed.length} could not be read` : ''}`;
    holder.replaceChildren(lineChart(series, {
      log: settings.log, axis: settings.axis, smoothing: settings.smoothing, yLabel: select.value,
      onZoom: (from, to) => { zoom = { from, to }; load(false); },
      onPick: onPick && settings.axis === 'step' ? onPick : null,
    }));
  };
  select.addEventListener('change', () => { zoom = {}; cache = new Map(); load(false); });
  reset.addEventListener('click', () => { zoom = {}; load(false); });
  if (remove) remove.addEventListener('click', () => onRemove(node));
  load(false);
  return { node, metric: () => select.value, draw, reload: () => { zoom = {}; cache = new Map(); starts.clear(); return load(false); }, refresh: () => (live && zoom.from === undefined ? load(true) : Promise.resolve(false)) };
}

// Several metric panels over the same runs, with shared settings (EMA
// smoothing, x-axis, log scale; remembered), panels added and removed.
// runs: [{ id, label, color, metrics: [names] }]. With `live`, every panel
// asks again every few seconds (If-None-Match: an unchanged series is a
// 304) while it is on the page and the page is visible. `onPick(step)`:
// a click on a chart (x by step). The green "live" badge says a run is
// being written: shown from the start when `growing` (a run says it is
// running), else once a series asked for again has grown.
export function metricPanels(runs, { live = false, growing = false, onPick, count = 4 } = {}) {
  // In the order given (metrics with values first), each name once; the
  // metrics most of the runs share first.
  const names = [...new Set(runs.flatMap((r) => r.metrics))];
  const shared = (n) => runs.filter((r) => r.metrics.includes(n)).length;
  const ranked = names.map((n, i) => [n, i]).sort((a, b) => shared(b[0]) - shared(a[0]) || a[1] - b[1]).map(([n]) => n);
  const root = el('div', { class: 'metrics' });
  if (!names.length) {
    root.append(el('p', { class: 'muted' }, 'No numeric metrics found in these files.'));
    return root;
  }
  const settings = { smoothing: pref('smoothing', 0), axis: pref('axis', 'step'), log: pref('log', false) };
  const smooth = el('input', { type: 'range', min: 0, max: 0.99, step: 0.01, value: settings.smoothing, class: 'smoothing', 'aria-label': 'smoothing' });
  const smoothValue = el('span', { class: 'mono smoothing-value' }, settings.smoothing.toFixed(2));
  const axis = el('select', { class: 'x-axis', 'aria-label': 'x axis' },
    [['step', 'step'], ['wall', 'wall time'], ['relative', 'time since start']].map(([v, t]) => el('option', { value: v, selected: v === settings.axis }, t)));
  const logBox = el('input', { type: 'checkbox', class: 'log-scale', checked: settings.log });
  const add = el('button', { type: 'button', class: 'panel-add' }, '+ panel');
  const grid = el('div', { class: 'panel-grid' });
  const panels = [];
  const redraw = () => panels.forEach((p) => p.draw());
  smooth.addEventListener('input', () => { settings.smoothing = Number(smooth.value); smoothValue.textContent = settings.smoothing.toFixed(2); setPref('smoothing', settings.smoothing); redraw(); });
  axis.addEventListener('change', () => { settings.axis = axis.value; setPref('axis', settings.axis); panels.forEach((p) => p.reload()); });
  logBox.addEventListener('change', () => { settings.log = logBox.checked; setPref('log', settings.log); redraw(); });
  const remove = (node) => {
    const i = panels.findIndex((p) => p.node === node);
    if (i >= 0) panels.splice(i, 1);
    node.remove();
  };
  const addPanel = (metric) => {
    const p = metricPanel(runs, names, metric, settings, { onPick, onRemove: remove, live, onGrow: () => { if (liveNote) liveNote.hidden = false; } });
    panels.push(p);
    grid.append(p.node);
  };
  add.addEventListener('click', () => {
    const used = new Set(panels.map((p) => p.metric()));
    addPanel(ranked.find((n) => !used.has(n)) || ranked[0]);
  });
  const liveNote = live ? el('span', { class: 'badge live', hidden: !growing, title: 'this run is being written: its charts ask the server again every few seconds' }, 'live') : null;
  ranked.slice(0, Math.max(1, Math.min(count, ranked.length))).forEach(addPanel);
  root.append(el('div', { class: 'toolbar panel-settings' },
    el('label', {}, 'Smoothing ', smooth, ' ', smoothValue),
    el('label', {}, 'x ', axis),
    el('label', {}, logBox, ' log scale'),
    liveNote, el('span', { class: 'grow' }), add), grid);
  if (live) {
    const timer = setInterval(() => {
      if (!root.isConnected) { clearInterval(timer); return; }
      if (document.visibilityState !== 'visible') return;
      panels.forEach((p) => p.refresh());
    }, LIVE_MS);
  }
  return root;
}
