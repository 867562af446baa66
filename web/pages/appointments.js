// Appointments: the signed-in person books for themselves (the table's stream and the pipe take
// it from there), sees their own appointments, and sets how they prefer to be reached (the
// pipe's enrichment reads it). All at their verified address, which the API takes from the token.
import { h, field, status } from '../dom.js';
import { segment } from '../api.js';

export default function appointments(main, { api, person }) {
  const booked = status();
  const patient = field('Patient', { testid: 'appointment-patient', required: true, autocomplete: 'name', value: person.name });
  const dentist = field('Dentist', { testid: 'appointment-dentist', required: true });
  const when = field('Starts at', { testid: 'appointment-starts', type: 'datetime-local', required: true });
  const notes = field('Notes (optional)', { testid: 'appointment-notes', tag: 'textarea', rows: '2' });
  const book = h('button', { type: 'submit', testid: 'appointment-book' }, 'Book');
  const bookForm = h('form', { 'aria-label': 'Book an appointment' },
    patient.label, dentist.label, when.label, notes.label, book);
  const mine = h('ul', { class: 'appointments', testid: 'appointment-list', 'aria-label': 'My appointments' });

  const saved = status();
  const method = field('Preferred method', { testid: 'contact-method', tag: 'select' });
  for (const [value, label] of [['email', 'E-mail'], ['sms', 'Text message'], ['none', 'Do not contact']]) {
    method.control.append(h('option', { value }, label));
  }
  const save = h('button', { type: 'submit', testid: 'contact-save' }, 'Save preference');
  const contactForm = h('form', { 'aria-label': 'Contact preference' }, method.label, save);

  main.append(h('h2', {}, 'Appointments'), h('p', {}, `Booked for ${person.email}.`), bookForm, booked.element,
    h('h3', {}, 'My appointments'), mine,
    h('h3', {}, 'How the clinic reaches me'), contactForm, saved.element);

  async function list() {
    try {
      const page = await api.get('/appointments');
      mine.replaceChildren(...page.items.map((a) => h('li', { testid: 'appointment-row' },
        `${new Date(a.startsAt).toLocaleString()}: ${a.patientName} with ${a.dentist}`)));
      if (!page.items.length) mine.append(h('li', {}, 'None booked yet.'));
    } catch (error) {
      booked.say(error.message, 'error');
    }
  }

  bookForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    book.disabled = true;
    try {
      const body = {
        patientName: patient.control.value,
        dentist: dentist.control.value,
        // datetime-local is the person's local time; the API takes RFC 3339.
        startsAt: new Date(when.control.value).toISOString(),
      };
      if (notes.control.value.trim()) body.notes = notes.control.value;
      const appointment = await api.post('/appointments', body);
      booked.say(`Booked ${appointment.patientName} with ${appointment.dentist} on ${new Date(appointment.startsAt).toLocaleString()}.`, 'ok');
      booked.element.dataset.testid = 'appointment-booked';
      await list();
    } catch (error) {
      booked.say(error.message, 'error');
    } finally {
      book.disabled = false;
    }
  });

  contactForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const stored = await api.put(`/contacts/${segment(person.email)}`, { preferredMethod: method.control.value });
      saved.say(`${stored.email} prefers ${stored.preferredMethod}.`, 'ok');
    } catch (error) {
      saved.say(error.message, 'error');
    }
  });
  list();
}
