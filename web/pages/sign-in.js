// Signing in, creating an account (confirmed with the code e-mailed to the address), and a
// forgotten password reset with a code the same way. Every other page needs a signed-in person.
import { h, field } from '../dom.js';

export default function signIn(main, { auth, signedIn, notice }) {
  const error = h('p', { class: 'error', role: 'alert', testid: 'auth-error' });
  const info = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  let email = '';

  // One step of the flow: a heading, a form and what its buttons do.
  function step(title, fields, button, action, extras = []) {
    error.textContent = '';
    const form = h('form', { 'aria-label': title }, ...fields.map((f) => f.label), button);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      button.disabled = true;
      try {
        await action();
      } catch (failure) {
        if (failure.code === 'UserNotConfirmedException') confirm(failure.message);
        else error.textContent = failure.message;
      } finally {
        button.disabled = false;
      }
    });
    main.replaceChildren(h('h2', {}, title), form, error, info, h('p', { class: 'actions' }, ...extras));
    fields[0].control.focus();
  }

  const link = (text, testid, go) => h('button', { type: 'button', class: 'secondary', testid, onclick: go }, text);
  const emailField = () => field('E-mail', { testid: 'auth-email', type: 'email', required: true, autocomplete: 'username', value: email });
  const passwordField = (autocomplete, label = 'Password') =>
    field(label, { testid: 'auth-password', type: 'password', required: true, autocomplete, minlength: '12' });
  const codeField = () => field('Code from the e-mail', { testid: 'auth-code', required: true, inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6' });

  function signInStep(message = '') {
    const address = emailField();
    const password = passwordField('current-password');
    step('Sign in', [address, password], h('button', { type: 'submit', testid: 'auth-signin' }, 'Sign in'), async () => {
      email = address.control.value.trim();
      await auth.signIn(email, password.control.value);
      signedIn();
    }, [link('Create an account', 'auth-to-signup', () => signUpStep()), link('Forgot your password?', 'auth-to-forgot', () => forgotStep())]);
    info.textContent = message;
  }

  function signUpStep() {
    const address = emailField();
    const password = passwordField('new-password', 'Password (at least 12 characters)');
    // The chat's rule for names: 1-32 characters of any script.
    const name = field('Display name', { testid: 'auth-name', required: true, autocomplete: 'nickname', maxlength: '32' });
    step('Create an account', [name, address, password], h('button', { type: 'submit', testid: 'auth-signup' }, 'Create account'), async () => {
      email = address.control.value.trim();
      await auth.signUp(email, password.control.value, name.control.value.trim());
      confirm(`We sent a code to ${email}.`);
    }, [link('I have an account', 'auth-to-signin', () => signInStep())]);
  }

  function confirm(message = `Enter the code we sent to ${email}.`) {
    const code = codeField();
    const resend = link('Send a new code', 'auth-resend', async () => {
      error.textContent = '';
      try {
        await auth.resendCode(email);
        info.textContent = `We sent a new code to ${email}.`;
      } catch (failure) {
        error.textContent = failure.message;
      }
    });
    step('Confirm your e-mail address', [code], h('button', { type: 'submit', testid: 'auth-confirm' }, 'Confirm'), async () => {
      await auth.confirm(email, code.control.value.trim());
      signInStep('Your account is confirmed: sign in.');
    }, [resend, link('Back to sign in', 'auth-to-signin', () => signInStep())]);
    info.textContent = message;
  }

  function forgotStep() {
    const address = emailField();
    step('Reset your password', [address], h('button', { type: 'submit', testid: 'auth-forgot' }, 'Send a code'), async () => {
      email = address.control.value.trim();
      await auth.forgotPassword(email);
      resetStep();
    }, [link('Back to sign in', 'auth-to-signin', () => signInStep())]);
  }

  function resetStep() {
    const code = codeField();
    const password = passwordField('new-password', 'New password (at least 12 characters)');
    step('Choose a new password', [code, password], h('button', { type: 'submit', testid: 'auth-reset' }, 'Set password'), async () => {
      await auth.resetPassword(email, code.control.value.trim(), password.control.value);
      signInStep('Your password is changed: sign in.');
    }, [link('Back to sign in', 'auth-to-signin', () => signInStep())]);
    // Sent only if the address has an account, which the page cannot tell (nor may it).
    info.textContent = `If ${email} has an account, we sent it a code.`;
  }

  signInStep(notice);
}
