// Photos: the signed-in person's album, newest first (GET /photos), each photo with its state.
// Pick or drop photos; each goes straight to S3 through its presigned URL (POST /uploads describes
// the PUT), with a progress bar; its 200 px thumbnail appears when the pipeline has made it, or
// the reason it never will. Each photo can be deleted (original and thumbnail both).
import { h, status, sleep } from '../dom.js';

const ACCEPTED = ['image/jpeg', 'image/png', 'image/webp', 'image/gif'];
// Headers a page may not set; the browser sends them itself (content-length = the file's size,
// which the ticket signed).
const BROWSER_SET = new Set(['content-length', 'host']);
const WAIT_FOR_THUMBNAIL_MS = 90_000;

export default function photos(main, { api }) {
  const note = status();
  const input = h('input', {
    id: 'photo-input', type: 'file', multiple: true, accept: ACCEPTED.join(','), testid: 'photo-input',
    onchange: () => { upload(input.files); input.value = ''; },
  });
  const grid = h('ul', { class: 'grid', 'aria-label': 'Your photos' });
  const more = h('button', { type: 'button', hidden: true, onclick: () => page(cursor) }, 'Show older photos');
  const drop = h('div', { class: 'drop' },
    h('label', { for: 'photo-input' }, 'Choose photos (JPEG, PNG, WebP, GIF)'), ' ', input,
    h('p', {}, 'or drop them here.'));
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    upload(event.dataTransfer.files);
  });
  main.append(h('h2', {}, 'Photos'), drop, note.element, grid, more);

  let active = true;
  let pending = 0;
  let cursor = null;

  // One page of the album, appended below what is shown.
  async function page(after) {
    more.hidden = true;
    try {
      const result = await api.get('/photos', after ? { cursor: after } : undefined);
      if (!active) return;
      for (const photo of result.items) {
        const { card, settle } = cardFor(photo.filename, photo.id);
        grid.append(card);
        if (photo.state === 'pending') watch(photo.id, settle);
        else settle(photo);
      }
      cursor = result.next_cursor || null;
      more.hidden = !cursor;
    } catch (error) {
      if (active) note.say(error.message, 'error');
    }
  }
  page(null);

  // A card: the name, a progress bar or state line, and a delete button once there is a photo.
  function cardFor(name, id) {
    const bar = h('progress', { max: '100', value: '0', 'aria-label': `Upload of ${name}` });
    const state = h('p', { class: 'status', 'aria-live': 'polite' }, id ? 'Making the thumbnail…' : 'Waiting for an upload ticket…');
    const card = h('li', { class: 'card', testid: 'photo-card' }, h('strong', {}, name), id ? null : bar, state);
    const fail = (message) => {
      bar.remove();
      state.replaceWith(h('p', { class: 'error', role: 'alert', testid: 'photo-error' }, message));
    };
    const deletable = (photoId) => card.append(h('button', {
      type: 'button', class: 'secondary', testid: 'photo-delete', 'aria-label': `Delete ${name}`,
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          await api.del(`/photos/${photoId}`);
          card.remove();
          note.say(`Deleted ${name}.`);
        } catch (error) {
          event.target.disabled = false;
          note.say(error.message, 'error');
        }
      },
    }, 'Delete'));
    // Shows a settled photo: its thumbnail, or why it has none.
    const settle = (photo) => {
      if (!active) return;
      if (photo.state === 'ready') {
        bar.remove();
        state.replaceWith(h('img', {
          src: photo.thumbnail_url, alt: `Thumbnail of ${name}`, width: String(photo.width || 200),
          testid: 'photo-thumbnail',
        }));
      } else {
        fail(photo.reason || photo.message || 'This upload cannot become a thumbnail.');
      }
    };
    if (id) deletable(id);
    return { card, bar, state, fail, settle, deletable };
  }
  const plural = (n) => `${n} photo${n === 1 ? '' : 's'}`;
  function upload(files) {
    const list = [...files];
    if (!list.length) return;
    pending += list.length;
    note.say(`Working on ${plural(pending)}…`);
    for (const file of list) {
      one(file).finally(() => {
        pending -= 1;
        if (active) note.say(pending ? `Working on ${plural(pending)}…` : 'Done.');
      });
    }
  }

  async function one(file) {
    const { card, bar, state, fail, settle, deletable } = cardFor(file.name, null);
    grid.prepend(card);
    try {
      const type = file.type || 'application/octet-stream'; // the API names what it accepts
      const ticket = await api.post('/uploads', { filename: file.name, content_type: type, size: file.size });
      deletable(ticket.id);
      state.textContent = 'Uploading…';
      await put(ticket, file, (fraction) => { bar.value = Math.round(fraction * 100); });
      bar.value = 100;
      state.textContent = 'Uploaded; making the thumbnail…';
      await watch(ticket.id, settle);
    } catch (error) {
      fail(error.message);
    }
  }

  // The PUT the ticket describes, with exactly its signed headers; XMLHttpRequest because fetch
  // reports no upload progress.
  function put(ticket, file, progress) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open(ticket.method || 'PUT', ticket.upload_url);
      for (const [name, value] of Object.entries(ticket.headers || {})) {
        if (!BROWSER_SET.has(name.toLowerCase())) request.setRequestHeader(name, value);
      }
      request.upload.onprogress = (event) => event.lengthComputable && progress(event.loaded / event.total);
      request.onload = () => (request.status >= 200 && request.status < 300
        ? resolve()
        : reject(new Error(`The upload was refused (${request.status}).`)));
      request.onerror = () => reject(new Error('The upload did not reach storage; try again.'));
      request.send(file);
    });
  }

  // Polls GET /photos/{id} until the pipeline has settled the photo (ready with its thumbnail's
  // URL, or failed with the reason), then shows it.
  async function watch(id, settle) {
    const deadline = Date.now() + WAIT_FOR_THUMBNAIL_MS;
    let delay = 500;
    while (active && Date.now() < deadline) {
      try {
        const photo = await api.get(`/photos/${id}`);
        if (photo.state !== 'pending') return settle(photo);
      } catch (error) {
        // Offline for a moment, or busy: keep waiting; anything else is the answer.
        if (error.status && error.status < 500 && error.status !== 429) {
          return settle({ state: 'failed', message: error.message });
        }
      }
      await sleep(delay);
      delay = Math.min(delay * 1.5, 3000);
    }
    return settle({ state: 'failed', message: 'No thumbnail after 90 seconds; try again later.' });
  }

  return () => { active = false; };
}
