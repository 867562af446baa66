// The single-page app: reads config.json (API URL, WebSocket URL, API key; written by `make dev`
// or, after `sam deploy`, by `make web-publish`), then renders the page the hash names.
import { api } from './api.js';
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

function render(config, client) {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'photos';
  const page = pages[name] || photos;
  if (leave) leave();
  leave = null;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('href') === '#/' + name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.replaceChildren();
  leave = page(main, { config, api: client }) || null;
  document.title = `${main.querySelector('h2')?.textContent || name} · serverless-rust-kit`;
  main.focus({ preventScroll: true });
}

loadConfig().then(
  (config) => {
    const client = api(config);
    window.addEventListener('hashchange', () => render(config, client));
    render(config, client);
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
