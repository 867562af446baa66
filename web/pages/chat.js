// Chat: a room (any script, emoji included), a ticket from the REST API under the signed-in
// person's own display name, then the room's WebSocket: live messages, history paged backwards as
// you scroll up, and who is in the room.
import { h, field, status } from '../dom.js';
import { segment } from '../api.js';

const HISTORY_PAGE = 20;
const MEMBERS_EVERY_MS = 5000;

export default function chat(main, { config, api }) {
  const note = status();
  const room = field('Room', { testid: 'chat-room', required: true, maxlength: '256', value: 'lobby' });
  const join = h('button', { type: 'submit', testid: 'chat-join' }, 'Join');
  const joinForm = h('form', { 'aria-label': 'Join a room' }, room.label, join);

  const log = h('ol', { class: 'log', 'aria-label': 'Messages', 'aria-live': 'polite', tabindex: '0' });
  const text = field('Message', { testid: 'chat-text', autocomplete: 'off', maxlength: '4000', disabled: true });
  const send = h('button', { type: 'submit', testid: 'chat-send', disabled: true }, 'Send');
  const sendForm = h('form', { 'aria-label': 'Send a message' }, text.label, send);
  const members = h('ul', { class: 'members', testid: 'chat-members', 'aria-label': 'In this room' });
  main.append(
    h('h2', {}, 'Chat'), joinForm, note.element,
    h('div', { class: 'chat' },
      h('section', { 'aria-label': 'Conversation' }, log, sendForm),
      h('section', {}, h('h3', {}, 'In the room'), members)),
  );

  let socket = null;
  let current = null; // { room, user }
  let before = null; // cursor of the next older history page; null when there is none
  let loadingOlder = false;
  let membersTimer = null;
  const seen = new Set();

  function line(message) {
    if (seen.has(message.id)) return null;
    seen.add(message.id);
    const sent = new Date(message.sent_at);
    return h('li', { testid: 'chat-message' },
      h('span', { class: 'who' }, message.user), message.text,
      h('time', { datetime: message.sent_at }, isNaN(sent) ? '' : sent.toLocaleTimeString()));
  }

  async function older() {
    if (!current || before === undefined || loadingOlder) return;
    loadingOlder = true;
    try {
      const page = await api.get(`/rooms/${segment(current.room)}/messages`, { limit: HISTORY_PAGE, before });
      const height = log.scrollHeight;
      // Pages come newest first; the log shows oldest at the top.
      for (const message of page.items) {
        const item = line(message);
        if (item) log.prepend(item);
      }
      before = page.next_cursor || undefined;
      log.scrollTop += log.scrollHeight - height;
    } catch (error) {
      note.say(error.message, 'error');
    } finally {
      loadingOlder = false;
    }
  }
  log.addEventListener('scroll', () => { if (log.scrollTop < 40) older(); });

  async function refreshMembers() {
    if (!current) return;
    try {
      const answer = await api.get(`/rooms/${segment(current.room)}/members`);
      members.replaceChildren(...answer.members.map((m) => h('li', { testid: 'chat-member' }, m.user)));
      if (answer.truncated) members.append(h('li', {}, '…and more'));
    } catch {
      // the list stays as it was; the next round tries again
    }
  }

  function leave() {
    clearInterval(membersTimer);
    if (socket) socket.close();
    socket = null;
    current = null;
  }

  joinForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    leave();
    log.replaceChildren();
    members.replaceChildren();
    seen.clear();
    const wanted = room.control.value;
    join.disabled = true;
    note.say('Joining…');
    try {
      // The ticket carries the signed-in person's display name (the API takes no other).
      const ticket = await api.post(`/rooms/${segment(wanted)}/tickets`, {});
      const url = `${config.websocketUrl}?ticket=${encodeURIComponent(ticket.ticket)}`;
      const opened = new WebSocket(url);
      socket = opened;
      opened.addEventListener('open', async () => {
        current = { room: ticket.room, user: ticket.user };
        before = null;
        note.say(`You are in ${ticket.room} as ${ticket.user}.`, 'ok');
        text.control.disabled = false;
        send.disabled = false;
        text.control.focus();
        await older();
        log.scrollTop = log.scrollHeight;
        refreshMembers();
        membersTimer = setInterval(refreshMembers, MEMBERS_EVERY_MS);
      });
      opened.addEventListener('message', (message) => {
        let frame;
        try { frame = JSON.parse(message.data); } catch { return; }
        if (frame.type !== 'message') return;
        const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
        const item = line(frame.message);
        if (item) log.append(item);
        if (stick) log.scrollTop = log.scrollHeight;
        if (!members.textContent.includes(frame.message.user)) refreshMembers();
      });
      opened.addEventListener('close', () => {
        if (socket !== opened) return;
        text.control.disabled = true;
        send.disabled = true;
        note.say(current ? 'Disconnected; join again to continue.' : 'The room could not be joined; try again.', 'error');
        current = null;
        clearInterval(membersTimer);
      });
    } catch (error) {
      note.say(error.message, 'error');
    } finally {
      join.disabled = false;
    }
  });

  sendForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = text.control.value;
    if (!value.trim() || !socket || socket.readyState !== WebSocket.OPEN) return;
    // The sender is the connection's name; the frame carries only the text.
    socket.send(JSON.stringify({ action: 'sendmessage', text: value }));
    text.control.value = '';
    text.control.focus();
  });

  return leave;
}
