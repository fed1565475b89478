// The login shell: takes the key from the login link's fragment (which
// never reaches a server log or a Referer), trades it for the session
// cookie, removes it from the address bar and history, and loads the app.

const status = document.getElementById('login-status');
// Where the host mounted the Lab ('' at the root of its own origin), and
// the binding's storage key namespaced by it (as dom.js reads it).
const base = document.querySelector('meta[name="lab-prefix"]').content;
const BINDING_KEY = base ? `lab-binding:${base}` : 'lab-binding';

function say(text) {
  status.textContent = text;
}

function signIn() {
  const match = /^#key=([A-Za-z0-9_-]{1,128})$/.exec(location.hash);
  if (!match) {
    say('You are not signed in. Open the link `lab serve` printed (the address with #key=… at its end).');
    return;
  }
  // Out of the address bar and history before anything else happens.
  history.replaceState(null, '', location.pathname + location.search);
  say('Signing in…');
  // A page binding: a secret only this origin's pages can read (storage is
  // per origin, port included), sent with every API call. A browser sends
  // the session cookie to every port of this host; without the binding the
  // cookie alone opens only what elements load by the URLs the API signed
  // for this session (media, downloads, log streams).
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const binding = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  localStorage.setItem(BINDING_KEY, binding);
  post(match[1], binding, 0);
}

// Posts the key and binding. A 429 (failed credentials over the Lab's
// server-wide rate, SPEC §4) is tried again after its Retry-After seconds,
// at most twice.
function post(key, binding, attempt) {
  fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ key, binding }),
    credentials: 'same-origin',
  }).then((response) => {
    if (response.status === 204) {
      location.replace(`${base}/`);
    } else if (response.status === 429 && attempt < 2) {
      const seconds = Number(response.headers.get('Retry-After'));
      say('Too many failed sign-ins on this Lab just now (someone may be guessing keys); trying again…');
      setTimeout(() => post(key, binding, attempt + 1), (Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 10) : 1) * 1000);
    } else if (response.status === 429) {
      say('Too many failed sign-ins on this Lab just now (someone may be guessing keys). Open the link again in a moment.');
    } else if (response.status === 401) {
      say('That link\'s key is not this Lab\'s: the Lab has been restarted since it printed it. Open the link it printed last.');
    } else {
      say(`Signing in failed (HTTP ${response.status}).`);
    }
  }, () => say('The Lab cannot be reached. Is `lab serve` still running?'));
}

// The link may arrive on this very page (pasted into the address bar): a
// fragment change, not a new load.
window.addEventListener('hashchange', signIn);
signIn();
