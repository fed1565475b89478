// Video players: the <video> points at the URL the API gave for the file
// (signed for this session; the browser streams and seeks it with Range,
// and the file is never fetched into a blob), a clear message when the
// browser cannot decode it, and a group that keeps several videos in step
// for comparison.

import { el } from './dom.js';

export const FRAME = 1 / 25;

export function player(url, label, { frameButtons = true } = {}) {
  const video = el('video', { src: url, controls: true, preload: 'metadata', playsinline: true });
  video.dataset.label = label;
  const note = el('p', { class: 'video-note', role: 'status' });
  const fail = (why) => {
    note.textContent = `${label}: ${why}`;
    note.classList.add('error');
  };
  video.addEventListener('error', () => {
    const code = video.error ? video.error.code : 0;
    if (code === 4) fail('this browser cannot play the file (unsupported codec or container; H.264/AAC in MP4 plays everywhere).');
    else if (code === 2) fail('the file could not be fetched (network error).');
    else if (code === 3) fail('the file is damaged or uses a codec this browser cannot decode.');
    else fail('the file could not be loaded.');
  });
  video.addEventListener('loadedmetadata', () => {
    if (!video.videoWidth) fail('no video track this browser can decode (audio only, or an unsupported codec).');
  });
  const controls = el('div', { class: 'frame-step' },
    el('button', { type: 'button', title: 'previous frame ([)', onclick: () => step(video, -1) }, '◀ frame'),
    el('button', { type: 'button', title: 'next frame (])', onclick: () => step(video, 1) }, 'frame ▶'));
  return { video, node: el('figure', { class: 'player' }, video, el('figcaption', {}, label), frameButtons ? controls : null, note) };
}

export function step(video, frames) {
  video.pause();
  video.currentTime = Math.max(0, Math.min((video.duration || 0), video.currentTime + frames * FRAME));
}

// Keeps `videos` together: one control bar drives all; drift is corrected.
export function syncGroup(videos) {
  const lead = () => videos[0];
  const slider = el('input', { type: 'range', min: 0, max: 1000, value: 0, 'aria-label': 'position' });
  const time = el('span', { class: 'time' }, '0.00 s');
  const speed = el('select', { 'aria-label': 'speed' }, [0.25, 0.5, 1, 1.5, 2].map((s) => el('option', { value: s, selected: s === 1 }, `${s}×`)));
  const playButton = el('button', { type: 'button', class: 'primary' }, 'Play');
  const duration = () => Math.max(...videos.map((v) => v.duration || 0));
  const api = {
    playing: false,
    async play() {
      const t = lead().currentTime;
      videos.forEach((v) => { v.currentTime = Math.min(t, v.duration || t); });
      await Promise.all(videos.map((v) => v.play().catch(() => {})));
      api.playing = true; playButton.textContent = 'Pause';
    },
    pause() {
      videos.forEach((v) => v.pause());
      api.playing = false; playButton.textContent = 'Play';
    },
    toggle() { return api.playing ? api.pause() : api.play(); },
    seek(t) {
      const target = Math.max(0, Math.min(duration(), t));
      videos.forEach((v) => { v.currentTime = Math.min(target, v.duration || target); });
    },
    step(frames) { api.pause(); api.seek(lead().currentTime + frames * FRAME); },
    rate(r) { videos.forEach((v) => { v.playbackRate = r; }); },
  };
  playButton.addEventListener('click', () => api.toggle());
  speed.addEventListener('change', () => api.rate(Number(speed.value)));
  slider.addEventListener('input', () => api.seek((Number(slider.value) / 1000) * duration()));
  lead().addEventListener('timeupdate', () => {
    const d = duration();
    if (d) slider.value = String(Math.round((lead().currentTime / d) * 1000));
    time.textContent = `${lead().currentTime.toFixed(2)} s`;
    if (!api.playing) return;
    for (const v of videos.slice(1)) {
      if (!v.ended && Math.abs(v.currentTime - lead().currentTime) > 0.08) v.currentTime = lead().currentTime;
    }
  });
  lead().addEventListener('ended', () => api.pause());
  const bar = el('div', { class: 'sync-bar' },
    playButton,
    el('button', { type: 'button', title: 'previous frame ([)', onclick: () => api.step(-1) }, '◀ frame'),
    el('button', { type: 'button', title: 'next frame (])', onclick: () => api.step(1) }, 'frame ▶'),
    slider, time, el('label', {}, 'speed ', speed));
  return { api, bar };
}
