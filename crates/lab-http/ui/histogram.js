// Distributions: each histogram of a run drawn as TensorBoard's
// distribution view draws it. The server compresses every step of a
// histogram to nine values (the bands: min, the values at -1.5σ, -1σ,
// -0.5σ, the median, +0.5σ, +1σ, +1.5σ of a normal distribution's
// weight, and max; GET /api/runs/{id}/histograms/{name}); here they are
// nested filled areas over the steps, lightest for min–max, darker inward,
// and a line for the median. Hovering shows the step and its nine values.
// Plain SVG, text only through text nodes; no dependencies.

import { el, svg, api } from './dom.js';

// Steps asked for per histogram (spread over its steps by the server).
const POINTS = 500;
// The view box: about the width a panel has, so its text reads at 11 px.
const W = 440;
const H = 220;
const PAD = { left: 48, right: 10, top: 10, bottom: 24 };
const COLOR = '#e8590c';
// Outer band to inner: the indices of its lower and upper edge in
// `bands`, and how dark it is drawn.
const BANDS = [[0, 8, 0.16], [1, 7, 0.28], [2, 6, 0.42], [3, 5, 0.58]];
const MEDIAN = 4;
const NAMES = ['min', '-1.5σ', '-1σ', '-0.5σ', 'median', '+0.5σ', '+1σ', '+1.5σ', 'max'];

// The "Distributions" panel body of `run` (its `histograms` from the run's
// details), or null when it has none. Each chart loads on its own.
export function distributions(run) {
  const histograms = run.histograms || [];
  if (!histograms.length) return null;
  return el('div', { id: 'distributions', class: 'distributions' },
    histograms.map((h) => {
      const box = el('div', { class: 'histogram-panel', 'data-histogram': h.name },
        el('h3', { class: 'mono' }, h.name),
        el('p', { class: 'muted' }, `loading ${h.count.toLocaleString()} steps…`));
      load(run.id, h.name, box);
      return box;
    }));
}

async function load(runId, name, box) {
  const title = el('h3', { class: 'mono' }, name);
  try {
    const got = await api(`/api/runs/${encodeURIComponent(runId)}/histograms/${encodeURIComponent(name)}?points=${POINTS}`);
    box.replaceChildren(title, ...chart(got.points || []));
  } catch (err) {
    box.replaceChildren(title, el('p', { class: 'error' }, String((err && err.message) || err)));
  }
}

const short = (v) => String(Number(v.toPrecision(5)));

// Five round ticks over [lo, hi].
function ticks(lo, hi) {
  const span = hi - lo;
  const raw = span / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= 5) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9 && out.length < 12; t += step) out.push(t);
  return out;
}

// The chart of `points` ([{step, wall_time, bands}]) and its hover
// readout, or a note when nothing is drawable.
function chart(points) {
  const shown = points.filter((p) => Array.isArray(p.bands) && p.bands.length === 9 && p.bands.every((v) => typeof v === 'number'));
  if (!shown.length) return [el('p', { class: 'muted' }, 'No finite values to draw.')];
  // One step alone is drawn one step wide.
  const drawn = shown.length === 1 ? [{ ...shown[0], step: shown[0].step - 0.5 }, { ...shown[0], step: shown[0].step + 0.5 }] : shown;
  let [x0, x1] = [drawn[0].step, drawn[drawn.length - 1].step];
  let y0 = Math.min(...drawn.map((p) => p.bands[0]));
  let y1 = Math.max(...drawn.map((p) => p.bands[8]));
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const line = (i, list) => list.map((p, k) => `${k ? 'L' : 'M'}${sx(p.step).toFixed(2)},${sy(p.bands[i]).toFixed(2)}`).join('');
  const area = (lo, hi) => `${line(hi, drawn)}${line(lo, [...drawn].reverse()).replace(/^M/, 'L')}Z`;

  const grid = svg('g', { class: 'grid' });
  for (const t of ticks(y0, y1)) {
    grid.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: sy(t), y2: sy(t) }),
      svg('text', { x: PAD.left - 6, y: sy(t) + 4, 'text-anchor': 'end' }, short(t)));
  }
  // Steps are whole numbers: so are their ticks.
  for (const t of ticks(x0, x1).filter((t) => Number.isInteger(t))) {
    grid.append(svg('text', { x: sx(t), y: H - 8, 'text-anchor': 'middle' }, short(t)));
  }
  const bands = BANDS.map(([lo, hi, opacity], n) => svg('path', {
    class: `band band-${n}`, d: area(lo, hi), fill: COLOR, 'fill-opacity': opacity, stroke: 'none',
  }));
  const median = svg('path', { class: 'median', d: line(MEDIAN, drawn), fill: 'none', stroke: COLOR, 'stroke-width': 1.5 });
  const cursor = svg('line', { class: 'cursor', y1: PAD.top, y2: H - PAD.bottom, visibility: 'hidden' });
  const readout = el('p', { class: 'muted mono histogram-readout' }, 'Hover the chart for a step\'s values.');
  const plot = svg('svg', {
    class: 'chart-svg histogram-svg', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'distribution over steps',
  }, grid, bands, median, cursor);
  plot.addEventListener('mousemove', (e) => {
    const box = plot.getBoundingClientRect();
    if (!box.width) return;
    const x = x0 + (((e.clientX - box.left) / box.width) * W - PAD.left) / (W - PAD.left - PAD.right) * (x1 - x0);
    let best = shown[0];
    for (const p of shown) if (Math.abs(p.step - x) < Math.abs(best.step - x)) best = p;
    cursor.setAttribute('x1', sx(best.step));
    cursor.setAttribute('x2', sx(best.step));
    cursor.setAttribute('visibility', 'visible');
    readout.textContent = `step ${best.step}: ${best.bands.map((v, i) => `${NAMES[i]} ${short(v)}`).join(' · ')}`;
  });
  plot.addEventListener('mouseleave', () => cursor.setAttribute('visibility', 'hidden'));
  return [el('div', { class: 'chart' }, plot), readout];
}
