// Metrics: series fetched from the metrics API (downsampled on the server
// into buckets with first x, last y, min and max), and SVG line charts with
// a min/max band whose extremes are never hidden (its envelope is drawn as
// lines, a bucket far wider than the rest as a bold stroke, and the y range
// always holds every bucket's min and max, smoothed or not), EMA smoothing
// (the raw line faint behind), a log scale, x by step, wall time or time
// since the run's first point, hover values of every run at that x (the
// exact x, and where a bucket's min and max lie, asked of the server for
// that bucket's range alone), click to pick an x, and drag-to-zoom (a zoom
// asks the server for the range again, so detail is never lost). A panel
// grid shows several metrics at once; a run's page shows every metric, in
// sections by prefix that load their charts only when in view, and its
// single values as numbers. A live panel asks again every few seconds with
// If-None-Match, so an unchanged series costs a 304. Every request for a
// series waits its turn: at most MAX_IN_FLIGHT at once. No dependencies.

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
/// The most series requests in flight at once (a run with 200 metrics
/// does not fire 200 requests).
const MAX_IN_FLIGHT = 4;

let inFlight = 0;
const waiting = [];
// `task()` once fewer than MAX_IN_FLIGHT requests are out.
async function queued(task) {
  if (inFlight >= MAX_IN_FLIGHT) await new Promise((resolve) => waiting.push(resolve));
  inFlight++;
  try {
    return await task();
  } finally {
    inFlight--;
    const next = waiting.shift();
    if (next) next();
  }
}

// One series of one run, from the API: { points: [[x, y]], band: [[x, min,
// max]], buckets: [[x, y, min, max]] (each but x may be null), count, etag }, `count` being the points in the range asked for
// (more than there are buckets: the buckets hold several points each).
// With the ETag of what the caller holds, a 304 returns `null`.
export async function fetchSeries(runId, name, { from, to, x = 'step' } = {}, etag) {
  const q = new URLSearchParams({ points: String(POINTS) });
  if (from !== undefined) q.set('from', String(from));
  if (to !== undefined) q.set('to', String(to));
  if (x === 'wall') q.set('x', 'wall');
  const got = await queued(() => apiConditional(`/api/runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(name)}?${q}`, etag));
  if (got.status === 304) return null;
  const s = got.data;
  const points = [];
  const band = [];
  const buckets = [];
  s.x.forEach((xv, i) => {
    if (xv === null) return;
    if (s.y[i] !== null) points.push([xv, s.y[i]]);
    if (s.min[i] !== null && s.max[i] !== null) band.push([xv, s.min[i], s.max[i]]);
    buckets.push([xv, s.y[i], s.min[i], s.max[i]]);
  });
  return { points, band, buckets, count: s.count, etag: got.etag };
}

// Where the largest and the smallest value of the points with x in
// [from, until) lie (`until` undefined: to the end): { max: [x, y], min:
// [x, y] }, each null when no value there is finite. `ask(from, to)`
// fetches that range, `to` inclusive (fetchSeries); a range of more points
// than a response has buckets is narrowed to the bucket that holds the
// extreme, a few times at most, until the points are exact.
export async function locateExtremes(ask, from, until) {
  const find = async (largest) => {
    let [lo, hi] = [from, until];
    for (let round = 0; round < 4; round++) {
      const open = hi === undefined || hi <= lo;
      const s = await ask(lo, open ? undefined : hi);
      // The next bucket's first x (`to`, inclusive) is not this bucket's.
      const band = s.band.filter(([x]) => x >= lo && (open || x < hi));
      if (!band.length) return null;
      const value = (b) => (largest ? b[2] : -b[1]);
      const best = band.reduce((a, b) => (value(b) > value(a) ? b : a));
      // No more points than buckets: each bucket is one point.
      if (s.count <= POINTS) return [best[0], largest ? best[2] : best[1]];
      const next = band[band.indexOf(best) + 1];
      [lo, hi] = [best[0], next ? next[0] : hi];
    }
    return null;
  };
  return { max: await find(true), min: await find(false) };
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

// About `count` ticks from `min` to `max` at a step of 1, 2 or 5 times a
// power of ten. Each tick is a whole number of steps (`k * step`), not a
// sum of steps: a sum drifts, and the tick at zero read -2.78e-17.
export function niceTicks(min, max, count) {
  if (min === max) { min -= 1; max += 1; }
  const span = max - min;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
  const err = (count * step0) / span;
  const step = step0 * (err <= 0.15 ? 10 : err <= 0.35 ? 5 : err <= 0.75 ? 2 : 1);
  const ticks = [];
  for (let k = Math.ceil(min / step); k * step <= max + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
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

// How an x value reads, per axis: `format` on the axis, `exact` in the
// hover (a step in full, `123,456`, never `123k`).
const exactStep = (v) => (Number.isInteger(v) ? v.toLocaleString('en-US') : String(Number(v.toPrecision(12))));
const X_AXES = {
  step: { label: 'step', format: fmt, exact: exactStep },
  wall: {
    label: 'wall time',
    format: (s) => new Date(s * 1000).toISOString().slice(11, 19),
    exact: (s) => new Date(s * 1000).toISOString().replace('T', ' ').slice(0, 23),
  },
  relative: {
    label: 'time since start',
    format: (s) => (Math.abs(s) < 120 ? `${Number(s.toPrecision(3))}s` : Math.abs(s) < 7200 ? `${Number((s / 60).toPrecision(3))}m` : `${Number((s / 3600).toPrecision(3))}h`),
    exact: (s) => `${Number(s.toFixed(3))}s`,
  },
};

// A y value in the hover: up to 7 significant digits.
const exactY = (v) => (v === null || !Number.isFinite(v) ? 'NaN' : String(Number(v.toPrecision(7))));

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

// The index of the bucket (of `buckets`, by first x) that holds `x`: the
// last one starting at or before it, else the first.
function holding(buckets, x) {
  let lo = 0;
  let hi = buckets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (buckets[mid].x <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Buckets wider than this share of the y axis, and than EXTREME_TIMES the
// median bucket, are drawn as a bold stroke: a spike in one bucket of
// hundreds stays in plain view at any zoom.
const EXTREME_SHARE = 0.04;
const EXTREME_TIMES = 4;
/// Most bold strokes one series gets (the widest).
const MAX_EXTREMES = 64;
/// A pointer this close (in chart units) to a bold stroke hovers it.
const SNAP = 5;

// series: [{ id, label, color, points: [[x, y], ...], band: [[x, min, max], ...],
// buckets: [[x, y, min, max], ...] (y, min, max may be null), count }].
// `locate(series, from, until)`: where the extremes of a bucket lie
// (locateExtremes), for the hover.
export function lineChart(series, { log = false, axis = 'step', yLabel = '', smoothing = 0, onZoom, onPick, locate } = {}) {
  const W = 760, H = 320, L = 64, R = 28, T = 14, B = 40;
  const { label: xLabel, format: xFmt, exact: xExact } = X_AXES[axis] || X_AXES.step;
  const wrap = el('div', { class: 'chart' });
  // On a log scale only positive values draw; a bucket whose min is not
  // positive reaches down to the smallest positive value instead.
  const positives = log ? series.flatMap((s) => s.points.map((p) => p[1]).concat((s.band || []).flatMap((b) => [b[1], b[2]]))).filter((v) => v > 0) : [];
  const floor = positives.reduce((a, b) => Math.min(a, b), Infinity);
  const usable = series.map((s) => {
    const points = log ? s.points.filter(([, y]) => y > 0) : s.points;
    const all = (s.buckets || s.points.map(([x, y]) => [x, y, y, y])).map(([x, y, lo, hi]) => ({ x, y, lo, hi }));
    const buckets = log ? all.map((b) => ({
      x: b.x,
      y: b.y > 0 ? b.y : null,
      lo: b.hi !== null && b.hi > 0 ? (b.lo > 0 ? b.lo : floor) : null,
      hi: b.hi !== null && b.hi > 0 ? b.hi : null,
    })) : all;
    // The band and the range keep every bucket's extremes, smoothed or
    // not: smoothing changes the line, never what the axis holds.
    const band = buckets.filter((b) => b.lo !== null && b.hi !== null).map((b) => [b.x, b.lo, b.hi]);
    return { ...s, points, shown: ema(points, smoothing), band, buckets };
  }).filter((s) => s.points.length || s.band.length);
  if (!usable.length) {
    wrap.append(el('p', { class: 'muted' }, log ? 'No positive values to show on a log scale.' : 'No numeric values for this metric.'));
    return wrap;
  }
  const ty = (y) => (log ? Math.log10(y) : y);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of usable) {
    for (const [x, y] of s.points) {
      if (x < x0) x0 = x; if (x > x1) x1 = x;
      const t = ty(y); if (t < y0) y0 = t; if (t > y1) y1 = t;
    }
    for (const [x, lo, hi] of s.band) {
      if (x < x0) x0 = x; if (x > x1) x1 = x;
      if (ty(lo) < y0) y0 = ty(lo); if (ty(hi) > y1) y1 = ty(hi);
    }
  }
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
  // Per series, the buckets drawn as bold strokes (their indices).
  const extremes = usable.map((s) => {
    const widths = s.buckets.map((b, i) => [i, b.lo === null || b.hi === null ? 0 : ty(b.hi) - ty(b.lo)]);
    const sorted = widths.map(([, w]) => w).sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1] || 0;
    return widths.filter(([, w]) => w > EXTREME_SHARE * (y1 - y0) && w > EXTREME_TIMES * median)
      .sort((a, b) => b[1] - a[1]).slice(0, MAX_EXTREMES).map(([i]) => i);
  });
  usable.forEach((s, si) => {
    // Where a bucket holds many points, the band shows its extremes: a
    // filled band, its envelope as lines, and a bucket far wider than the
    // rest as a bold stroke, so a spike never disappears in the
    // downsampling, smoothed or not.
    if (s.band.some(([, lo, hi]) => hi > lo)) {
      const upper = s.band.map(([x, , hi], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(hi).toFixed(1)}`).join('');
      const lower = s.band.slice().reverse().map(([x, lo], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(lo).toFixed(1)}`).join('');
      root.append(svg('path', { d: `${upper}${lower.replace(/^M/, 'L')}Z`, fill: s.color, 'fill-opacity': 0.18, stroke: 'none', class: 'band' }));
      root.append(svg('path', { d: `${upper}${lower}`, fill: 'none', stroke: s.color, 'stroke-width': 1, 'stroke-opacity': 0.55, class: 'envelope' }));
      for (const i of extremes[si]) {
        const b = s.buckets[i];
        root.append(svg('line', {
          x1: px(b.x), x2: px(b.x), y1: py(b.hi), y2: py(b.lo), stroke: s.color, 'stroke-width': 2, 'stroke-opacity': 0.9, class: 'extreme',
          'data-x': b.x, 'data-min': b.lo, 'data-max': b.hi,
        }));
      }
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
  });
  const cursor = svg('line', { class: 'cursor', y1: T, y2: H - B, x1: -10, x2: -10 });
  const dots = usable.map((s) => svg('circle', { r: 3.5, fill: s.color, cx: -10, cy: -10 }));
  // A ring on the hovered bucket's max, once the server said where it is.
  const rings = usable.map((s) => svg('circle', { r: 5, fill: 'none', stroke: s.color, 'stroke-width': 1.5, cx: -10, cy: -10, class: 'extreme-ring' }));
  root.append(cursor, ...dots, ...rings);
  const tip = el('div', { class: 'tip', hidden: true });
  const toX = (event) => {
    const box = root.getBoundingClientRect();
    const sx = ((event.clientX - box.left) / box.width) * W;
    return x0 + ((sx - L) / (W - L - R)) * (x1 - x0);
  };
  // Where the extremes of a bucket lie, once asked (by series and x).
  const located = new Map();
  let hovered = '';
  let asking = null;
  // Every run's bucket at the x under the pointer (the one that holds it,
  // or a bold stroke within a few units): its exact x, its value (the
  // smoothed one first when smoothing), and its min and max when they
  // differ, with where they lie once the server says; highest first.
  const hover = (x) => {
    const rows = usable.map((s, si) => {
      if (!s.buckets.length) return null;
      let i = holding(s.buckets, x);
      let snapped = SNAP;
      for (const e of extremes[si]) {
        const d = Math.abs(px(s.buckets[e].x) - px(x));
        if (d <= snapped) { snapped = d; i = e; }
      }
      const b = s.buckets[i];
      const next = s.buckets[i + 1];
      const shown = s.shown.length ? nearest(s.shown, b.x) : null;
      const found = located.get(`${si}|${b.x}`);
      const ring = found && found.max && Number.isFinite(py(found.max[1])) ? [px(found.max[0]), py(found.max[1])] : [-10, -10];
      rings[si].setAttribute('cx', ring[0]);
      rings[si].setAttribute('cy', ring[1]);
      if (shown) {
        dots[si].setAttribute('cx', px(shown[0]));
        dots[si].setAttribute('cy', py(shown[1]));
      }
      return { s, si, b, next, shown, key: `${si}|${b.x}` };
    }).filter(Boolean);
    const value = (r) => (r.shown ? r.shown[1] : -Infinity);
    rows.sort((a, b) => value(b) - value(a));
    // The header names the x of the bucket nearest the pointer, exactly
    // (and where it ends, when a bucket holds several points).
    const first = rows.reduce((best, r) => (Math.abs(r.b.x - x) < Math.abs(best.b.x - x) ? r : best), rows[0]);
    cursor.setAttribute('x1', px(first.b.x)); cursor.setAttribute('x2', px(first.b.x));
    const many = (r) => r.b.lo !== null && r.b.hi !== null && r.b.hi > r.b.lo;
    const until = first.next && many(first) && axis === 'step' && Number.isInteger(first.next.x) && first.next.x - 1 > first.b.x ? `–${xExact(first.next.x - 1)}` : '';
    const where = (r, which) => {
      const found = located.get(r.key);
      const at = found && found[which];
      return at ? ` at ${xLabel} ${xExact(at[0])}` : '';
    };
    tip.replaceChildren(el('div', { class: 'tip-head' }, `${xLabel} ${xExact(first.b.x)}${until}`),
      ...rows.map((r) => el('div', { class: 'tip-run' },
        el('div', { class: 'tip-row' }, el('i', { class: 'swatch', 'data-color': r.s.color }),
          `${r.s.label}: ${exactY(smoothing && r.shown ? r.shown[1] : r.b.y)}${smoothing ? ` (raw ${exactY(r.b.y)})` : ''}`),
        many(r) ? el('div', { class: 'tip-extremes muted' }, `max ${exactY(r.b.hi)}${where(r, 'max')} · min ${exactY(r.b.lo)}${where(r, 'min')}`) : null)));
    tip.querySelectorAll('.swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
    // A bucket of several points: ask where its extremes lie (after a
    // pause, and for a few runs at most), then say it.
    const key = rows.map((r) => r.key).join(',');
    if (key !== hovered) {
      hovered = key;
      clearTimeout(asking);
      const ask = rows.filter((r) => many(r) && !located.has(r.key)).slice(0, 4);
      if (locate && ask.length && usable.length <= 6) {
        asking = setTimeout(() => {
          for (const r of ask) {
            located.set(r.key, null);
            locate(r.s, r.b.x, r.next ? r.next.x : undefined).then((found) => {
              located.set(r.key, found);
              if (hovered === key && !tip.hidden) hover(x);
            }, () => located.delete(r.key));
          }
        }, 120);
      }
    }
  };
  const place = (event) => {
    const box = root.getBoundingClientRect();
    const at = event.clientX - box.left;
    // Beside the pointer, on the side with room.
    const width = tip.offsetWidth;
    tip.style.left = `${Math.max(0, at > box.width / 2 ? at - width - 12 : Math.min(at + 12, box.width - width))}px`;
    tip.style.top = `${event.clientY - box.top + 12}px`;
  };
  root.addEventListener('pointermove', (event) => {
    hover(toX(event));
    tip.hidden = false;
    place(event);
  });
  root.addEventListener('pointerleave', () => {
    tip.hidden = true; hovered = ''; clearTimeout(asking);
    rings.forEach((ring) => { ring.setAttribute('cx', -10); ring.setAttribute('cy', -10); });
  });
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
  // For the end-to-end test and the console: what this chart drew, the
  // x and y its axes span (y in log10 units on a log scale) and where its
  // plot lies in the SVG's own units.
  wrap.chart = {
    series: usable.map((s) => ({ label: s.label, points: s.points.length })), smoothing, axis, log,
    x: [x0, x1], y: [y0, y1], plot: { left: L, top: T, right: W - R, bottom: H - B, width: W, height: H },
  };
  return wrap;
}

// One metric of several runs, drawn with the grid's shared settings.
// runs: [{ id, label, color, metrics: [names] }]; settings: { smoothing,
// axis, log }. With `watch(node, onVisible)` the panel loads only once in
// view, and a live one asks again only while in view; its metric list is
// filled when first opened. Returns { node, metric, draw, reload, refresh }.
function metricPanel(runs, names, metric, settings, { onPick, onRemove, live, onGrow, watch }) {
  const option = (n) => el('option', { value: n, selected: n === metric }, n);
  const select = el('select', { 'aria-label': 'metric', class: 'panel-metric' }, watch ? option(metric) : names.map(option));
  if (watch) {
    const fill = () => {
      if (select.options.length >= names.length) return;
      const chosen = select.value;
      select.replaceChildren(...names.map((n) => el('option', { value: n, selected: n === chosen }, n)));
    };
    select.addEventListener('focus', fill);
    select.addEventListener('pointerdown', fill);
  }
  const reset = el('button', { type: 'button', class: 'zoom-reset', hidden: true }, 'reset zoom');
  const remove = onRemove ? el('button', { type: 'button', class: 'panel-remove', title: 'remove this panel', 'aria-label': 'remove panel' }, '✕') : null;
  const status = el('span', { class: 'muted panel-status' });
  const pending = () => el('p', { class: 'muted' }, 'loading…');
  const holder = el('div', { class: 'panel-chart pending' }, pending());
  const node = el('div', { class: 'metric-panel' }, el('div', { class: 'toolbar' }, select, status, el('span', { class: 'grow' }), reset, remove), holder);
  let zoom = {};
  let generation = 0;
  // Asked for since the last reset (a watched panel asks once in view),
  // and whether it is in view now.
  let asked = false;
  let inView = !watch;
  // Per run: the last series fetched, its ETag, and (for time since start)
  // its first wall time.
  let cache = new Map();
  const starts = new Map();
  const shift = (id) => (settings.axis === 'relative' ? (starts.get(id) || 0) : 0);
  const x = () => (settings.axis === 'step' ? 'step' : 'wall');
  const query = (id) => {
    if (zoom.from === undefined) return { x: x() };
    return { x: x(), from: zoom.from + shift(id), to: zoom.to + shift(id) };
  };
  const mine = () => runs.filter((r) => r.metrics.includes(select.value));
  // Fetches what changed (all, or only what a 304 does not cover) and
  // redraws when anything did. Returns whether it redrew.
  const load = async (conditional) => {
    asked = true;
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
        return [r.id, { points: [], band: [], buckets: [], count: 0, error: err }];
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
  // Where the extremes of one run's bucket [from, until) lie, asked of the
  // server for that range alone (x as drawn: shifted back and forth).
  const locate = (s, from, until) => {
    const d = shift(s.id);
    const metric = select.value;
    return locateExtremes((lo, hi) => fetchSeries(s.id, metric, { x: x(), from: lo + d, to: hi === undefined ? undefined : hi + d }), from, until)
      .then((found) => ({
        max: found.max && [found.max[0] - d, found.max[1]],
        min: found.min && [found.min[0] - d, found.min[1]],
      }));
  };
  const draw = () => {
    // A watched panel not yet asked for has nothing to draw.
    if (!asked) return;
    reset.hidden = zoom.from === undefined;
    const series = mine().map((r) => {
      const s = cache.get(r.id) || { points: [], band: [], buckets: [], count: 0 };
      const d = shift(r.id);
      const moved = (p) => (d ? p.map(([x, ...rest]) => [x - d, ...rest]) : p);
      return { id: r.id, label: r.label, color: r.color, points: moved(s.points), band: moved(s.band), buckets: moved(s.buckets || []), count: s.count, error: s.error };
    });
    if (!cache.size) return;
    const failed = series.filter((s) => s.error);
    const total = series.reduce((n, s) => n + s.count, 0);
    status.textContent = `${total.toLocaleString()} points${failed.length ? ` · ${failed.length} could not be read` : ''}`;
    holder.classList.remove('pending');
    holder.replaceChildren(lineChart(series, {
      log: settings.log, axis: settings.axis, smoothing: settings.smoothing, yLabel: select.value,
      onZoom: (from, to) => { zoom = { from, to }; load(false); },
      onPick: onPick && settings.axis === 'step' ? onPick : null,
      locate,
    }));
  };
  // Back to nothing asked: loaded now when in view, else once it is.
  const restart = () => {
    zoom = {}; cache = new Map(); starts.clear(); asked = false; generation++;
    if (inView) return load(false);
    holder.classList.add('pending');
    holder.replaceChildren(pending());
    return Promise.resolve(false);
  };
  select.addEventListener('change', () => { zoom = {}; cache = new Map(); load(false); });
  reset.addEventListener('click', () => { zoom = {}; load(false); });
  if (remove) remove.addEventListener('click', () => onRemove(node));
  if (watch) {
    watch(node, (visible) => {
      inView = visible;
      if (visible && !asked) load(false);
    });
  } else load(false);
  return {
    node, metric: () => select.value, draw, reload: restart,
    refresh: () => (live && inView && asked && zoom.from === undefined ? load(true) : Promise.resolve(false)),
  };
}

// The settings every panel of a grid shares (EMA smoothing, x-axis, log
// scale; remembered) and the bar that sets them, acting on `panels`. With
// `live`, a "live" badge: shown from the start when `growing`, else once
// `grown()` is called (a series asked for again had grown).
function settingsBar(panels, { live, growing }) {
  const settings = { smoothing: pref('smoothing', 0), axis: pref('axis', 'step'), log: pref('log', false) };
  const smooth = el('input', { type: 'range', min: 0, max: 0.99, step: 0.01, value: settings.smoothing, class: 'smoothing', 'aria-label': 'smoothing' });
  const smoothValue = el('span', { class: 'mono smoothing-value' }, settings.smoothing.toFixed(2));
  const axis = el('select', { class: 'x-axis', 'aria-label': 'x axis' },
    [['step', 'step'], ['wall', 'wall time'], ['relative', 'time since start']].map(([v, t]) => el('option', { value: v, selected: v === settings.axis }, t)));
  const logBox = el('input', { type: 'checkbox', class: 'log-scale', checked: settings.log });
  const redraw = () => panels.forEach((p) => p.draw());
  smooth.addEventListener('input', () => { settings.smoothing = Number(smooth.value); smoothValue.textContent = settings.smoothing.toFixed(2); setPref('smoothing', settings.smoothing); redraw(); });
  axis.addEventListener('change', () => { settings.axis = axis.value; setPref('axis', settings.axis); panels.forEach((p) => p.reload()); });
  logBox.addEventListener('change', () => { settings.log = logBox.checked; setPref('log', settings.log); redraw(); });
  const liveNote = live ? el('span', { class: 'badge live', hidden: !growing, title: 'this run is being written: its charts ask the server again every few seconds' }, 'live') : null;
  const bar = el('div', { class: 'toolbar panel-settings' },
    el('label', {}, 'Smoothing ', smooth, ' ', smoothValue),
    el('label', {}, 'x ', axis),
    el('label', {}, logBox, ' log scale'),
    liveNote, el('span', { class: 'grow' }));
  return { settings, bar, grown: () => { if (liveNote) liveNote.hidden = false; } };
}

// With `live`, every panel asks again every few seconds (If-None-Match: an
// unchanged series is a 304) while `root` is on the page and the page is
// visible.
function followLive(root, panels) {
  const timer = setInterval(() => {
    if (!root.isConnected) { clearInterval(timer); return; }
    if (document.visibilityState !== 'visible') return;
    panels.forEach((p) => p.refresh());
  }, LIVE_MS);
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
  const panels = [];
  const { settings, bar, grown } = settingsBar(panels, { live, growing });
  const add = el('button', { type: 'button', class: 'panel-add' }, '+ panel');
  bar.append(add);
  const grid = el('div', { class: 'panel-grid' });
  const remove = (node) => {
    const i = panels.findIndex((p) => p.node === node);
    if (i >= 0) panels.splice(i, 1);
    node.remove();
  };
  const addPanel = (metric) => {
    const p = metricPanel(runs, names, metric, settings, { onPick, onRemove: remove, live, onGrow: grown });
    panels.push(p);
    grid.append(p.node);
  };
  add.addEventListener('click', () => {
    const used = new Set(panels.map((p) => p.metric()));
    addPanel(ranked.find((n) => !used.has(n)) || ranked[0]);
  });
  ranked.slice(0, Math.max(1, Math.min(count, ranked.length))).forEach(addPanel);
  root.append(bar, grid);
  if (live) followLive(root, panels);
  return root;
}

/// The preference that remembers a run page's closed sections.
const SECTIONS_PREF = 'metric-sections';
/// Most experiments (or runs in none) whose closed sections are remembered.
const MAX_REMEMBERED = 100;

// The sections closed on the pages of `key` (an experiment, or a run in
// none), as last left.
function closedSections(key) {
  const all = pref(SECTIONS_PREF, {});
  const names = all && typeof all === 'object' ? all[key] : null;
  return new Set(Array.isArray(names) ? names.filter((n) => typeof n === 'string') : []);
}

// Remembers the sections closed for `key`, the most recently used kept.
function rememberClosed(key, closed) {
  const all = pref(SECTIONS_PREF, {});
  const kept = all && typeof all === 'object' && !Array.isArray(all) ? all : {};
  delete kept[key];
  kept[key] = [...closed];
  const keys = Object.keys(kept);
  for (const old of keys.slice(0, Math.max(0, keys.length - MAX_REMEMBERED))) delete kept[old];
  setPref(SECTIONS_PREF, kept);
}

// A metric's section: the part of its name up to its first `/`
// (`train/`), or '' for a name without one.
const prefixOf = (name) => {
  const slash = name.indexOf('/');
  return slash > 0 ? name.slice(0, slash + 1) : '';
};

// Every metric of one run, on its page. `run` is the API's run (its
// `metrics`: name, count, last, last_step). Series of one point are the
// "summary", numbers in a list; the others are charts in sections by
// prefix (`train/`, `val/`, …, then the rest as "other"), each section
// collapsible, its charts in a grid. Which sections are closed is
// remembered under `memory` (the run's experiment, else the run). A chart
// asks for its series only once in view (an open section, scrolled to),
// and every request waits its turn (MAX_IN_FLIGHT), so a run of hundreds
// of metrics asks for what is seen. `live`, `growing`, `onPick`: as for
// metricPanels.
export function metricSections(run, { live = false, growing = false, onPick, memory }) {
  const metrics = run.metrics.slice().sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  const singles = metrics.filter((m) => m.count === 1);
  const names = metrics.filter((m) => m.count > 1).map((m) => m.name);
  const groups = new Map();
  for (const name of names) {
    const prefix = prefixOf(name);
    if (!groups.has(prefix)) groups.set(prefix, []);
    groups.get(prefix).push(name);
  }
  const prefixes = [...groups.keys()].filter(Boolean).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  if (groups.has('')) prefixes.push('');
  const panels = [];
  const { settings, bar, grown } = settingsBar(panels, { live, growing });
  const root = el('div', { class: 'metrics metric-sections' });
  if (names.length) root.append(bar);
  // Charts ask for their series when they come near the viewport.
  const watchers = new Map();
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const onVisible = watchers.get(entry.target);
      if (onVisible) onVisible(entry.isIntersecting);
    }
  }, { rootMargin: '300px 0px' });
  const watch = (node, onVisible) => { watchers.set(node, onVisible); observer.observe(node); };
  const closed = closedSections(memory);
  let made = 0;
  const section = (key, title, count, body) => {
    const id = `metric-section-${++made}`;
    const open = !closed.has(key);
    const chevron = el('span', { class: 'chevron', 'aria-hidden': 'true' }, open ? '▾' : '▸');
    const toggle = el('button', { type: 'button', class: 'section-toggle', 'aria-expanded': String(open), 'aria-controls': id },
      chevron, el('span', { class: 'section-title mono' }, title), el('span', { class: 'muted section-count' }, `(${count})`));
    body.id = id;
    body.hidden = !open;
    toggle.addEventListener('click', () => {
      const opening = body.hidden;
      body.hidden = !opening;
      toggle.setAttribute('aria-expanded', String(opening));
      chevron.textContent = opening ? '▾' : '▸';
      if (opening) closed.delete(key); else closed.add(key);
      rememberClosed(memory, closed);
    });
    return el('section', { class: 'metric-section', 'data-section': key }, el('h3', { class: 'section-head' }, toggle), body);
  };
  if (singles.length) {
    root.append(section('summary', 'summary', singles.length, el('dl', { class: 'summary-values' },
      singles.map((m) => el('div', { class: 'summary-value', 'data-metric': m.name },
        el('dt', { class: 'mono' }, m.name),
        el('dd', { class: 'num', title: m.last_step === null || m.last_step === undefined ? '' : `at step ${m.last_step}` }, m.last === null ? 'NaN' : exactY(m.last)))))));
  }
  const runs = [{ id: run.id, label: run.name, color: COLORS[0], metrics: names }];
  for (const prefix of prefixes) {
    const grid = el('div', { class: 'panel-grid' });
    for (const name of groups.get(prefix)) {
      const p = metricPanel(runs, names, name, settings, { onPick, live, onGrow: grown, watch });
      panels.push(p);
      grid.append(p.node);
    }
    const title = prefix || (prefixes.length > 1 ? 'other' : 'charts');
    root.append(section(prefix || 'other', title, groups.get(prefix).length, grid));
  }
  if (live) followLive(root, panels);
  return root;
}
