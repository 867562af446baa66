// Approvals: ask a manager to approve a promotion, and follow my requests (GET /approvals). The
// manager gets an e-mail whose link opens the API's own confirmation page (link -> page ->
// button); nothing here needs to stay open.
import { h, field, status } from '../dom.js';

export default function approvals(main, { config, api }) {
  const note = status();
  const employee = field('Employee', { testid: 'approval-employee', required: true, autocomplete: 'name' });
  const manager = field("Manager's e-mail", { testid: 'approval-manager', type: 'email', required: true, autocomplete: 'email' });
  const submit = h('button', { type: 'submit', testid: 'approval-request' }, 'Request approval');
  const form = h('form', { 'aria-label': 'Request an approval' }, employee.label, manager.label, submit);
  const mine = h('ul', { 'aria-label': 'My requests' });
  const refresh = h('button', { type: 'button', class: 'secondary', testid: 'approvals-refresh', onclick: () => list() }, 'Refresh');
  main.append(
    h('h2', {}, 'Approvals'),
    h('p', {}, 'The manager receives an e-mail with approve and reject links; the link opens a page that asks before it decides.'),
    form, note.element,
    h('h3', {}, 'My requests'), mine, refresh,
  );

  const WORDS = {
    pending: 'waiting for the manager', approved: 'approved', rejected: 'rejected',
    timed_out: 'not answered in time', failed: 'could not be completed',
  };
  async function list() {
    try {
      const page = await api.get('/approvals');
      mine.replaceChildren(...page.items.map((r) => h('li', { testid: 'approval-row', 'data-status': r.status },
        `Promotion of ${r.employeeName}, asked of ${r.managerEmail}: ${WORDS[r.status] || r.status}`,
        r.decidedAt ? ` (${new Date(r.decidedAt).toLocaleString()})` : '')));
      if (!page.items.length) mine.append(h('li', {}, 'No requests yet.'));
    } catch (error) {
      note.say(error.message, 'error');
    }
  }
  list();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const started = await api.post('/approvals', {
        employeeName: employee.control.value,
        managerEmail: manager.control.value,
      });
      note.say(`Asked ${manager.control.value} (request ${started.name}). The decision arrives by e-mail.`, 'ok');
      list();
      if (config.localMailbox) {
        const mailbox = new URL(config.localMailbox);
        mailbox.searchParams.set('to', manager.control.value);
        note.element.append(' ', h('a', { href: mailbox.href, target: '_blank', rel: 'noopener' }, 'Open the local mailbox'));
      }
    } catch (error) {
      note.say(error.message, 'error');
    } finally {
      submit.disabled = false;
    }
  });
}
