// The Import dialog (opened from the header): a run directory under one
// of the allowed roots, imported or, when the Lab already has it, opened.
// It belongs to the view it was opened over: leaving that view closes it
// (page.js).

import { $, el, api } from './dom.js';
import { store, loadStatus, pageLimit } from './store.js';

function openImport() {
  const dialog = $('import-dialog');
  const roots = store.status ? store.status.allowed_roots : [];
  $('import-roots').replaceChildren(...(roots.length ? roots.map((r) => el('li', { class: 'mono' }, r)) : [el('li', { class: 'error' }, 'none: start the Lab with --root DIR to allow imports')]));
  $('import-error').textContent = '';
  dialog.showModal();
  $('import-path').focus();
}

async function submitImport(event) {
  event.preventDefault();
  const path = $('import-path').value.trim();
  const id = $('import-id').value.trim();
  const button = $('import-submit');
  button.disabled = true;
  $('import-error').textContent = '';
  try {
    // Already registered (found by the Lab's walk of the roots, or
    // imported before): open it. An id asks for a new import.
    const known = id ? null : await runAt(path);
    const run = known || await api('/api/runs', { method: 'POST', json: id ? { path, id } : { path } });
    $('import-dialog').close();
    $('import-form').reset();
    loadStatus().catch(() => {});
    location.hash = `#/runs/${encodeURIComponent(run.id)}`;
  } catch (err) {
    // Found by the Lab's own walk of the roots (or imported before): open
    // it rather than call the import a failure.
    const existing = err.code === 'already_registered' ? await runAt(path) : null;
    if (existing) {
      $('import-dialog').close();
      $('import-form').reset();
      location.hash = `#/runs/${encodeURIComponent(existing.id)}`;
    } else {
      $('import-error').textContent = plainReason(err);
    }
  } finally {
    button.disabled = false;
  }
}

// The registered run whose directory is `path` (as typed, or without a
// trailing slash), looked up by its last component; null when not found.
async function runAt(path) {
  const trimmed = path.replace(/\/+$/, '');
  const name = trimmed.split('/').pop();
  if (!name) return null;
  try {
    const page = await api(`/api/runs?q=${encodeURIComponent(name)}&limit=${pageLimit()}`);
    return page.runs.find((r) => r.path === trimmed) || null;
  } catch (_) {
    return null;
  }
}

function plainReason(err) {
  switch (err.code) {
    case 'outside_allowed_roots': return 'Refused: that directory is not inside one of the allowed roots listed above.';
    case 'directory_not_found': return 'There is no directory at that path.';
    case 'not_a_directory': return 'That path is a file, not a directory.';
    case 'path_not_absolute': return 'Give an absolute path, starting with /.';
    case 'already_registered': return `Already imported: ${err.message}.`;
    case 'id_taken': return `That run id is taken: ${err.message}.`;
    case 'invalid_run_id': return 'Run ids use a-z, 0-9 and -, starting with a letter or digit.';
    case 'is_allowed_root': return 'That is an allowed root itself; choose a run directory inside it.';
    default: return err.message;
  }
}

// Wired once, at start-up (the dialog is in index.html).
export function wireImport() {
  $('import-open').addEventListener('click', openImport);
  $('import-cancel').addEventListener('click', () => $('import-dialog').close());
  $('import-form').addEventListener('submit', submitImport);
}
