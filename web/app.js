// The single-page app: reads config.json (API URL, WebSocket URL, API key, the user pool and its
// endpoint; written by `make dev` or, after `sam deploy`, by `make web-publish`), then renders
// the page the hash names for a signed-in person, and the sign-in page for anyone else.
import { api } from './api.js';
import { auth as signInWith } from './auth.js';
import signIn from './pages/sign-in.js';
import { h } from './dom.js';
import photos from './pages/photos.js';
import chat from './pages/chat.js';
import approvals from './pages/approvals.js';
import items from './pages/items.js';
import appointments from './pages/appointments.js';

const pages = { photos, chat, approvals, items, appointments };
const main = document.getElementById('main');
let leave = null;

async function loadConfig() {
  const response = await fetch('config.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`config.json: ${response.status}`);
  return response.json();
}

const account = document.getElementById('account');
const nav = document.querySelector('nav');

// The header's signed-in name and sign-out button, or nothing (and no page links) when signed out.
function showAccount(auth, session) {
  nav.hidden = !session;
  if (!session) {
    account.replaceChildren();
    return;
  }
  const out = h('button', { type: 'button', class: 'secondary', testid: 'auth-signout' }, 'Sign out');
  out.addEventListener('click', () => auth.signOut());
  account.replaceChildren(h('span', { testid: 'auth-user' }, session.name), out);
}

function render(config, client, auth) {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'photos';
  const page = pages[name] || photos;
  if (leave) leave();
  leave = null;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('href') === '#/' + name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.replaceChildren();
  leave = page(main, { config, api: client, person: auth.current() }) || null;
  document.title = `${main.querySelector('h2')?.textContent || name} · serverless-rust-kit`;
  main.focus({ preventScroll: true });
}

loadConfig().then(
  async (config) => {
    const auth = signInWith(config);
    const client = api(config, auth);
    let signedIn = false;
    const show = (notice = '') => {
      const session = auth.current();
      showAccount(auth, session);
      if (session) {
        render(config, client, auth);
        return;
      }
      if (leave) leave();
      leave = null;
      main.replaceChildren();
      signIn(main, { auth, signedIn: () => show(), notice });
      document.title = 'Sign in · serverless-rust-kit';
    };
    auth.onChange((session) => {
      // Signing in renders the page itself; a session that ends (sign-out, a refused refresh,
      // a 401) goes back to the sign-in page.
      if (signedIn && !session) show('You are signed out.');
      signedIn = Boolean(session);
      showAccount(auth, session);
    });
    window.addEventListener('hashchange', () => show());
    // A session kept from before a reload: renewed if it is about to expire, else used as is.
    signedIn = Boolean(await auth.session());
    show();
  },
  (error) => {
    main.replaceChildren(
      h('h2', {}, 'Not configured'),
      h('p', { class: 'error', role: 'alert' },
        `This app reads config.json beside index.html and could not (${error.message}). ` +
        'Locally run `make dev`; after `sam deploy` run `make web-publish`.'),
    );
  },
);
