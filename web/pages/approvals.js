// Approvals: ask a manager to approve a promotion. The manager gets an e-mail whose link opens
// the API's own confirmation page (link -> page -> button); nothing here needs to stay open.
import { h, field, status } from '../dom.js';

export default function approvals(main, { config, api }) {
  const note = status();
  const employee = field('Employee', { testid: 'approval-employee', required: true, autocomplete: 'name' });
  const manager = field("Manager's e-mail", { testid: 'approval-manager', type: 'email', required: true, autocomplete: 'email' });
  const submit = h('button', { type: 'submit', testid: 'approval-request' }, 'Request approval');
  const form = h('form', { 'aria-label': 'Request an approval' }, employee.label, manager.label, submit);
  main.append(
    h('h2', {}, 'Approvals'),
    h('p', {}, 'The manager receives an e-mail with approve and reject links; the link opens a page that asks before it decides.'),
    form, note.element,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const started = await api.post('/approvals', {
        employeeName: employee.control.value,
        managerEmail: manager.control.value,
      });
      note.say(`Asked ${manager.control.value} (request ${started.name}). The decision arrives by e-mail.`, 'ok');
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
