// Photos: pick or drop photos; each goes straight to S3 through its presigned URL (POST /uploads
// describes the PUT), with a progress bar; its 200 px thumbnail appears when the pipeline has made
// it, or the reason it never will.
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
  main.append(h('h2', {}, 'Photos'), drop, note.element, grid);

  let active = true;
  let pending = 0;
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
    const bar = h('progress', { max: '100', value: '0', 'aria-label': `Upload of ${file.name}` });
    const state = h('p', { class: 'status', 'aria-live': 'polite' }, 'Waiting for an upload ticket…');
    const card = h('li', { class: 'card' }, h('strong', {}, file.name), bar, state);
    grid.prepend(card);
    const fail = (message) => {
      bar.remove();
      state.replaceWith(h('p', { class: 'error', role: 'alert', testid: 'photo-error' }, message));
    };
    try {
      const type = file.type || 'application/octet-stream'; // the API names what it accepts
      const ticket = await api.post('/uploads', { filename: file.name, content_type: type, size: file.size });
      state.textContent = 'Uploading…';
      await put(ticket, file, (fraction) => { bar.value = Math.round(fraction * 100); });
      bar.value = 100;
      state.textContent = 'Uploaded; making the thumbnail…';
      const id = ticket.key.split('/')[1];
      const ready = await thumbnail(id);
      if (!active) return;
      if (ready.ok) {
        bar.remove();
        state.replaceWith(h('img', {
          src: api.url(`/thumbnails/${id}`), alt: `Thumbnail of ${file.name}`, width: '200',
          testid: 'photo-thumbnail',
        }));
      } else {
        fail(ready.message);
      }
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

  // GET /thumbnails/{id} redirects to the image once it exists (404 while pending, 422 with the
  // reason once it failed). `redirect: 'manual'` sees the redirect without following it to the
  // private bucket; the <img> then follows it.
  async function thumbnail(id) {
    const deadline = Date.now() + WAIT_FOR_THUMBNAIL_MS;
    let delay = 500;
    while (active && Date.now() < deadline) {
      let response = null;
      try {
        response = await fetch(api.url(`/thumbnails/${id}`), { redirect: 'manual', cache: 'no-store' });
      } catch {
        response = null; // offline for a moment: keep waiting
      }
      if (response && (response.type === 'opaqueredirect' || response.ok)) return { ok: true };
      if (response && response.status === 422) {
        const body = await response.json().catch(() => ({}));
        return { ok: false, message: body.error?.message || 'This upload cannot become a thumbnail.' };
      }
      if (response && response.status !== 404 && response.status < 500 && response.status !== 429) {
        return { ok: false, message: `The thumbnail cannot be fetched (${response.status}).` };
      }
      await sleep(delay);
      delay = Math.min(delay * 1.5, 3000);
    }
    return { ok: false, message: 'No thumbnail after 90 seconds; try again later.' };
  }

  return () => { active = false; };
}
