// The keyboard: one table of key → action, read by the key handler and by
// the help (`?`), which is made from it. An action acts on the page on
// screen (page.js): its media, its step scrubber, its own `move`/`open`;
// a key whose action the page lacks does nothing. Keys typed into a form
// field or a dialog are left alone, as are those with Ctrl, Alt or Meta.

import { el } from './dom.js';
import { filterHelp } from './view-runs.js';

// What each action does to a page; true when it did something (the key's
// default is then prevented).
const ACTIONS = {
  toggle: (page) => !!page.media && (page.media.toggle(), true),
  seek: (page, seconds) => !!page.media && (page.media.seek(seconds), true),
  frame: (page, n) => !!page.media && (page.media.step(n), true),
  step: (page, n) => !!page.scrubber && (page.scrubber.step(n), true),
  move: (page, d) => !!page.actions.move && (page.actions.move(d), true),
  open: (page) => !!page.actions.open && (page.actions.open(), true),
  help: () => (toggleHelp(), true),
};

// key (KeyboardEvent.key), what the help shows for it, its action and
// argument, and what it does in words.
export const KEYS = [
  { key: ' ', label: 'Space', action: 'toggle', help: 'play or pause the video (on compare: every video)' },
  { key: 'ArrowLeft', label: '←', action: 'seek', arg: -5, help: 'back 5 seconds' },
  { key: 'ArrowRight', label: '→', action: 'seek', arg: 5, help: 'forward 5 seconds' },
  { key: '[', label: '[', action: 'frame', arg: -1, help: 'previous video frame' },
  { key: ']', label: ']', action: 'frame', arg: 1, help: 'next video frame' },
  { key: ',', label: ',', action: 'step', arg: -1, help: 'media by step: the previous logged step' },
  { key: '.', label: '.', action: 'step', arg: 1, help: 'media by step: the next logged step' },
  { key: 'j', label: 'j', action: 'move', arg: 1, help: 'runs list: focus the next run; run page: open the next run listed' },
  { key: 'k', label: 'k', action: 'move', arg: -1, help: 'runs list: focus the previous run; run page: open the previous run listed' },
  { key: 'Enter', label: 'Enter', action: 'open', help: 'runs list: open the focused run' },
  { key: '?', label: '?', action: 'help', help: 'show or hide these keys' },
];

// The keys bound to `action`, as the help writes them (`j/k`).
export function keyHint(action) {
  return KEYS.filter((k) => k.action === action).map((k) => k.label).join('/');
}

// The key handler, acting on whatever `currentPage()` returns.
export function keyHandler(currentPage) {
  return (event) => {
    const target = event.target;
    if (target.closest && target.closest('input, select, textarea, dialog')) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const bound = KEYS.find((k) => k.key === event.key);
    const page = currentPage();
    if (!bound || !page) return;
    if (ACTIONS[bound.action](page, bound.arg)) event.preventDefault();
  };
}

// The help: a dialog listing KEYS, then what the runs list's search box
// takes (closed with Escape, or when the view is left, like every dialog).
function toggleHelp() {
  let dialog = document.getElementById('keys-help');
  if (!dialog) {
    dialog = el('dialog', { id: 'keys-help', 'aria-labelledby': 'keys-help-title' },
      el('h2', { id: 'keys-help-title' }, 'Keys'),
      el('table', { class: 'params' }, el('tbody', {}, KEYS.map((k) => el('tr', {}, el('th', {}, el('kbd', {}, k.label)), el('td', {}, k.help))))),
      el('h3', {}, 'Searching the runs list'),
      el('div', { class: 'filter-help-text' }, filterHelp()),
      el('form', { method: 'dialog', class: 'buttons' }, el('button', { type: 'submit' }, 'Close')));
    document.body.append(dialog);
  }
  if (dialog.open) dialog.close(); else dialog.showModal();
}
