// Media by step: one scrubber over the steps at which media were logged
// (W&B's wandb.Video and wandb.Image, TensorBoard images), showing for each
// run and key the item with the greatest step at or below the scrubber.
// The same on a run page (every key of one run) and on compare (one key,
// every run). Keyboard: the slider's own arrows, and `,` / `.` anywhere on
// the page (through `state.scrubber` in app.js). Each item is shown by the
// `url` the API gave it (an artifact's, or a TensorBoard image's own); an
// item without one is named, not shown.

import { el } from './dom.js';
import { player } from './player.js';

const stepped = (run) => (run.media || []).filter((m) => m.step !== null && m.step !== undefined);

// The keys the runs logged media under, most runs first.
export function mediaKeys(runs) {
  const count = new Map();
  for (const run of runs) {
    for (const key of new Set(stepped(run).map((m) => m.key || m.name))) count.set(key, (count.get(key) || 0) + 1);
  }
  return [...count.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
}

// The item of `items` (sorted by step) with the greatest step ≤ `step`.
export function atOrBefore(items, step) {
  let found = null;
  for (const m of items) {
    if (m.step <= step) found = m; else break;
  }
  return found;
}

// A scrubber and a tile per (run, key). runs: [{ id, title, media }];
// keys: which keys to show (all of them on a run page, one on compare).
// Returns null when none of the runs has media with a step; else a node
// with `.scrubber = { step(d), seek(step), current() }`.
export function stepScrubber(runs, { keys: only, chooseKey = false } = {}) {
  const allKeys = mediaKeys(runs);
  if (!allKeys.length) return null;
  let keys = only || (chooseKey ? [allKeys[0]] : allKeys);
  const holder = el('div', { class: 'scrubber', id: 'step-scrubber' });
  const slider = el('input', { type: 'range', min: 0, value: 0, step: 1, 'aria-label': 'media step', class: 'scrubber-range' });
  const label = el('span', { class: 'mono scrubber-step' });
  const tiles = el('div', { class: `scrub-tiles cols-${Math.min(4, runs.length * keys.length)}` });
  let steps = [];
  // One tile per (run, key): what it shows only changes when its item does.
  let cells = [];
  const build = () => {
    steps = [...new Set(runs.flatMap((r) => stepped(r).filter((m) => keys.includes(m.key || m.name)).map((m) => m.step)))].sort((a, b) => a - b);
    slider.max = Math.max(0, steps.length - 1);
    cells = [];
    tiles.className = `scrub-tiles cols-${Math.min(4, runs.length * keys.length)}`;
    tiles.replaceChildren();
    for (const run of runs) {
      for (const key of keys) {
        const items = stepped(run).filter((m) => (m.key || m.name) === key).sort((a, b) => a.step - b.step);
        const caption = el('figcaption', { class: 'muted scrub-caption' });
        const view = el('div', { class: 'scrub-view' });
        const tile = el('figure', { class: 'scrub-tile', 'data-run': run.id, 'data-key': key },
          el('div', { class: 'scrub-title' }, runs.length > 1 ? run.name : key), view, caption);
        tiles.append(tile);
        cells.push({ run, key, items, view, caption, shown: undefined });
      }
    }
  };
  const show = () => {
    const step = steps[Number(slider.value)];
    label.textContent = step === undefined ? 'no steps' : `step ${step}`;
    for (const cell of cells) {
      const m = step === undefined ? null : atOrBefore(cell.items, step);
      if (m === cell.shown) continue;
      cell.shown = m;
      if (!m) {
        cell.view.replaceChildren(el('div', { class: 'scrub-none muted' }, cell.items.length ? `nothing logged at or before step ${step}` : `no ${cell.key} in this run`));
        cell.caption.textContent = '';
        continue;
      }
      if (!m.url) cell.view.replaceChildren(el('div', { class: 'scrub-none muted' }, `${m.name.split('/').pop()}: the API gave no URL for it`));
      else if (m.kind === 'video') cell.view.replaceChildren(player(m.url, m.name, { frameButtons: false }).node);
      else cell.view.replaceChildren(el('img', { src: m.url, alt: `${cell.key} at step ${m.step}`, class: 'media-image' }));
      // A file of the run is named; an image inside a TensorBoard event
      // file (no artifact of that name) has no name worth showing.
      const file = (cell.run.artifacts || []).some((a) => a.name === m.name);
      cell.caption.textContent = `${cell.key} @ step ${m.step}${file ? ` · ${m.name.split('/').pop()}` : ''}`;
      cell.view.parentElement.dataset.step = String(m.step);
    }
  };
  slider.addEventListener('input', show);
  const seek = (step) => {
    // The greatest logged step at or below `step` (else the first).
    let i = 0;
    steps.forEach((s, j) => { if (s <= step) i = j; });
    slider.value = String(i);
    show();
  };
  const bar = el('div', { class: 'toolbar scrubber-bar' },
    el('button', { type: 'button', class: 'scrub-prev', title: 'previous step (,)', onclick: () => move(-1) }, '◀'),
    slider,
    el('button', { type: 'button', class: 'scrub-next', title: 'next step (.)', onclick: () => move(1) }, '▶'),
    label);
  if (chooseKey && allKeys.length > 1) {
    const select = el('select', { class: 'scrub-key', 'aria-label': 'media key' }, allKeys.map((k) => el('option', { value: k }, k)));
    select.addEventListener('change', () => {
      const at = steps[Number(slider.value)];
      keys = [select.value];
      build();
      seek(at === undefined ? 0 : at);
    });
    bar.prepend(select);
  }
  const move = (d) => {
    slider.value = String(Math.max(0, Math.min(steps.length - 1, Number(slider.value) + d)));
    show();
  };
  build();
  slider.value = String(Math.max(0, steps.length - 1));
  show();
  holder.append(bar, tiles);
  holder.scrubber = { step: move, seek, current: () => steps[Number(slider.value)] };
  return holder;
}
