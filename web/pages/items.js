// Items: a page of items at a time (the API's cursors, forwards and back), create, edit in place,
// delete.
import { h, field, status } from '../dom.js';
import { segment } from '../api.js';

const PAGE = 5;

export default function items(main, { api }) {
  const note = status();
  const name = field('Name', { testid: 'item-name', required: true, maxlength: '200' });
  const email = field('E-mail', { testid: 'item-email', type: 'email', required: true, autocomplete: 'email' });
  const create = h('button', { type: 'submit', testid: 'item-create' }, 'Create');
  const form = h('form', { 'aria-label': 'Create an item' }, name.label, email.label, create);
  const rows = h('tbody');
  const table = h('table', {},
    h('caption', { class: 'visually-hidden' }, 'Items'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'E-mail'),
      h('th', { scope: 'col', class: 'optional' }, 'Created'), h('th', { scope: 'col' }, 'Actions'))),
    rows);
  const previous = h('button', { class: 'secondary', testid: 'items-previous', disabled: true }, 'Previous');
  const next = h('button', { class: 'secondary', testid: 'items-next', disabled: true }, 'Next');
  const where = h('span', { class: 'status' });
  main.append(h('h2', {}, 'Items'), form, note.element, table, h('div', { class: 'pager' }, previous, where, next));

  // cursors[i] opens page i (page 0 has none); the API's next_cursor opens the one after.
  const cursors = [null];
  let page = 0;
  let nextCursor = null;

  async function show(index) {
    try {
      const answer = await api.get('/items', { limit: PAGE, cursor: cursors[index] });
      page = index;
      nextCursor = answer.next_cursor || null;
      if (nextCursor) cursors[index + 1] = nextCursor;
      rows.replaceChildren(...answer.items.map(row));
      if (!answer.items.length) rows.append(h('tr', {}, h('td', { colspan: '4' }, 'No items yet.')));
      previous.disabled = page === 0;
      next.disabled = !nextCursor;
      where.textContent = `Page ${page + 1}`;
    } catch (error) {
      note.say(error.message, 'error');
    }
  }
  previous.addEventListener('click', () => show(page - 1));
  next.addEventListener('click', () => show(page + 1));

  function row(item) {
    const edit = h('button', { class: 'secondary', testid: 'item-edit' }, 'Edit');
    const remove = h('button', { class: 'danger', testid: 'item-delete' }, 'Delete');
    const nameCell = h('td', {}, item.name);
    const tr = h('tr', { testid: 'item-row', 'data-id': item.id },
      nameCell, h('td', {}, item.email),
      h('td', { class: 'optional' }, new Date(item.created_at).toLocaleString()),
      h('td', {}, h('div', { class: 'actions' }, edit, remove)));
    edit.addEventListener('click', () => {
      const input = h('input', { value: item.name, testid: 'item-edit-name', 'aria-label': `New name for ${item.name}`, maxlength: '200' });
      const save = h('button', { type: 'submit', testid: 'item-save' }, 'Save');
      const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
      const editor = h('form', { class: 'actions' }, input, save, cancel);
      nameCell.replaceChildren(editor);
      input.focus();
      cancel.addEventListener('click', () => nameCell.replaceChildren(item.name));
      editor.addEventListener('submit', async (event) => {
        event.preventDefault();
        try {
          Object.assign(item, await api.put(`/items/${segment(item.id)}`, { name: input.value }));
          nameCell.replaceChildren(item.name);
          note.say(`Renamed to ${item.name}.`, 'ok');
        } catch (error) {
          note.say(error.message, 'error');
        }
      });
    });
    remove.addEventListener('click', async () => {
      if (!window.confirm(`Delete ${item.name}?`)) return;
      try {
        await api.del(`/items/${segment(item.id)}`);
        note.say(`Deleted ${item.name}.`, 'ok');
        await show(page);
      } catch (error) {
        note.say(error.message, 'error');
      }
    });
    return tr;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    create.disabled = true;
    try {
      // One key per attempt: a retried click never creates the item twice.
      const created = await api.post('/items', { name: name.control.value, email: email.control.value },
        { 'Idempotency-Key': crypto.randomUUID() });
      form.reset();
      cursors.length = 1;
      // The newest item heads page 1: the note comes once the list shows it.
      await show(0);
      note.say(`Created ${created.name}.`, 'ok');
    } catch (error) {
      note.say(error.message, 'error');
    } finally {
      create.disabled = false;
    }
  });

  show(0);
}
