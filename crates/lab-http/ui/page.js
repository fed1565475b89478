// The state of the view on screen: made by the router when it enters a
// view, dropped when it leaves. A view's timers, its toasts and the
// dialogs open over it belong to it and go with it; what the keys act on
// (its media, its step scrubber, its j/k and Enter) is set here by the
// view and read by keys.js.

import { showError, hideError } from './dom.js';

export function newPage(root) {
  const timers = new Set();
  const leaving = [];
  const page = {
    root,
    left: false,
    // What space, the arrows and [ ] act on: { toggle, seek, step }.
    media: null,
    // What , and . step: the media step scrubber on the page.
    scrubber: null,
    // The view's own key actions by name (keys.js): `move(d)`, `open()`.
    actions: {},
    // setInterval, cleared when the view is left.
    every(fn, ms) {
      const timer = setInterval(fn, ms);
      timers.add(timer);
      return timer;
    },
    stop(timer) {
      clearInterval(timer);
      timers.delete(timer);
    },
    // Run when the view is left (close a stream, say).
    onLeave(fn) { leaving.push(fn); },
    // A toast for this view: nothing once the view is left.
    showError(err) { if (!page.left) showError(err); },
    leave() {
      page.left = true;
      for (const timer of timers) clearInterval(timer);
      timers.clear();
      while (leaving.length) leaving.pop()();
      hideError();
      for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
    },
  };
  return page;
}
