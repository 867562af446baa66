// Appointments: book one (the table's stream and the pipe take it from there), and set how a
// contact prefers to be reached (the pipe's enrichment reads it).
import { h, field, status } from '../dom.js';
import { segment } from '../api.js';

export default function appointments(main, { api }) {
  const booked = status();
  const patient = field('Patient', { testid: 'appointment-patient', required: true, autocomplete: 'name' });
  const email = field('E-mail', { testid: 'appointment-email', type: 'email', required: true, autocomplete: 'email' });
  const dentist = field('Dentist', { testid: 'appointment-dentist', required: true });
  const when = field('Starts at', { testid: 'appointment-starts', type: 'datetime-local', required: true });
  const notes = field('Notes (optional)', { testid: 'appointment-notes', tag: 'textarea', rows: '2' });
  const book = h('button', { type: 'submit', testid: 'appointment-book' }, 'Book');
  const bookForm = h('form', { 'aria-label': 'Book an appointment' },
    patient.label, email.label, dentist.label, when.label, notes.label, book);

  const saved = status();
  const contact = field('Contact e-mail', { testid: 'contact-email', type: 'email', required: true, autocomplete: 'email' });
  const method = field('Preferred method', { testid: 'contact-method', tag: 'select' });
  for (const [value, label] of [['email', 'E-mail'], ['sms', 'Text message'], ['none', 'Do not contact']]) {
    method.control.append(h('option', { value }, label));
  }
  const save = h('button', { type: 'submit', testid: 'contact-save' }, 'Save preference');
  const contactForm = h('form', { 'aria-label': 'Contact preference' }, contact.label, method.label, save);

  main.append(h('h2', {}, 'Appointments'), bookForm, booked.element,
    h('h3', {}, 'How a contact is reached'), contactForm, saved.element);

  bookForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    book.disabled = true;
    try {
      const body = {
        patientName: patient.control.value,
        email: email.control.value,
        dentist: dentist.control.value,
        // datetime-local is the person's local time; the API takes RFC 3339.
        startsAt: new Date(when.control.value).toISOString(),
      };
      if (notes.control.value.trim()) body.notes = notes.control.value;
      const appointment = await api.post('/appointments', body);
      booked.say(`Booked ${appointment.patientName} with ${appointment.dentist} on ${new Date(appointment.startsAt).toLocaleString()}.`, 'ok');
      booked.element.dataset.testid = 'appointment-booked';
    } catch (error) {
      booked.say(error.message, 'error');
    } finally {
      book.disabled = false;
    }
  });

  contactForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const stored = await api.put(`/contacts/${segment(contact.control.value)}`, { preferredMethod: method.control.value });
      saved.say(`${stored.email} prefers ${stored.preferredMethod}.`, 'ok');
    } catch (error) {
      saved.say(error.message, 'error');
    }
  });
}
