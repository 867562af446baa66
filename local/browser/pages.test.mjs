// The web app in a real browser, one test per page, against a running stack: Debian's Chromium
// (/usr/bin/chromium) driven by playwright-core. local/tests/browser.rs starts the local stack,
// writes the fixtures and runs this with:
//   WEB_URL, API_URL, API_KEY   the stack (the app reads the same from its config.json)
//   PERSON_EMAIL, PERSON_PASSWORD, PERSON_NAME, ID_TOKEN
//                               a confirmed person of the user pool, who signs in to each page
//                               (ID_TOKEN: the same person's token for direct API calls)
//   COGNITO_ENDPOINT            where the page signs in (config.json's cognitoEndpoint)
//   PEOPLE                      more confirmed people, {name: {email, password}} (the chat's)
//   FIXTURES                    photo-1.jpg, photo-2.png, not-a-photo.jpg
//   SCREENSHOTS                 where each page's screenshot goes
// Every test fails on a console error or an uncaught exception in the page; the only messages
// allowed are the browser's own reports of Cognito's 400 where the sign-up test enters a wrong
// code and a wrong password on purpose.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (local/tests/browser.rs sets it)`);
  return value;
};
const WEB_URL = env('WEB_URL');
const API_URL = env('API_URL').replace(/\/$/, '');
const API_KEY = env('API_KEY');
const PERSON = { email: env('PERSON_EMAIL'), password: env('PERSON_PASSWORD'), name: env('PERSON_NAME') };
const ID_TOKEN = env('ID_TOKEN');
const COGNITO_ENDPOINT = env('COGNITO_ENDPOINT');
const PEOPLE = JSON.parse(env('PEOPLE'));
const FIXTURES = env('FIXTURES');
const SCREENSHOTS = env('SCREENSHOTS');
mkdirSync(SCREENSHOTS, { recursive: true });

// The machine's closed network: no background fetches, no QUIC, no component updates. Playwright
// gives every launch a fresh temporary profile (its own --user-data-dir).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
after(() => browser.close());

const REFUSED = /Failed to load resource: the server responded with a status of 400 .*/;

async function open(hash, options = {}) {
  const context = await browser.newContext({ viewport: options.viewport || { width: 1100, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const where = message.location().url || '';
    // Cognito's 400 for a wrong code or password, where a test provokes one (the page words it).
    if (options.cognitoRefusals && REFUSED.test(message.text()) && where.startsWith(COGNITO_ENDPOINT)) return;
    errors.push(`${message.text()} (${where})`);
  });
  await page.goto(WEB_URL + hash);
  if (options.signIn !== false) await signIn(page, options.as || PERSON);
  await page.getByRole('heading', { level: 2 }).waitFor();
  return { context, page, errors };
}

// Every page starts at the sign-in form; signed in, the header names the person.
async function signIn(page, person) {
  await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
  await byTestId(page, 'auth-email').fill(person.email);
  await byTestId(page, 'auth-password').fill(person.password);
  await byTestId(page, 'auth-signin').click();
  await byTestId(page, 'auth-user').getByText(person.name, { exact: true }).waitFor();
}

// A new person signs up through the page: the form, the code from the local mailbox, sign-in.
async function signUp(page, person) {
  await byTestId(page, 'auth-to-signup').click();
  await byTestId(page, 'auth-name').fill(person.name);
  await byTestId(page, 'auth-email').fill(person.email);
  await byTestId(page, 'auth-password').fill(person.password);
  await byTestId(page, 'auth-signup').click();
  await byTestId(page, 'auth-code').waitFor();
  await byTestId(page, 'auth-code').fill(await mailedCode(person.email));
  await byTestId(page, 'auth-confirm').click();
  await page.getByText('Your account is confirmed: sign in.').waitFor();
  await signIn(page, person);
}

async function mailedCode(email) {
  return eventually('the confirmation code', async () => {
    const response = await fetch(`${API_URL}/_local/mail?to=${encodeURIComponent(email)}`);
    const mail = await response.json();
    return (mail.messages?.at(-1)?.body || '').match(/\b\d{6}\b/)?.[0];
  });
}

async function shot(page, name) {
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);

async function rest(method, path, body, token = ID_TOKEN) {
  const headers = { 'x-api-key': API_KEY, 'content-type': 'application/json' };
  if (token) headers.authorization = token;
  const response = await fetch(API_URL + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function eventually(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

test('sign-up: a new person confirms with the e-mailed code, signs in, and signs out', async () => {
  const { context, page, errors } = await open('#/items', { signIn: false, cognitoRefusals: true });
  const person = { email: `zoe-${Date.now()}@example.com`, password: 'correct horse battery staple', name: 'Zoë Ørsted 🎉' };
  await byTestId(page, 'auth-to-signup').click();
  await byTestId(page, 'auth-name').fill(person.name);
  await byTestId(page, 'auth-email').fill(person.email);
  await byTestId(page, 'auth-password').fill('too short');
  await byTestId(page, 'auth-signup').click();
  // The browser's own check (minlength) stops it; past it, Cognito's refusal in the page's words.
  assert.equal(await byTestId(page, 'auth-password').evaluate((input) => input.validity.valid), false);
  await byTestId(page, 'auth-password').fill(person.password);
  await byTestId(page, 'auth-signup').click();
  await byTestId(page, 'auth-code').waitFor();
  const code = await mailedCode(person.email);
  await byTestId(page, 'auth-code').fill(code === '000000' ? '000001' : '000000');
  await byTestId(page, 'auth-confirm').click();
  await byTestId(page, 'auth-error').getByText('That code is not the one we sent').waitFor();
  await byTestId(page, 'auth-code').fill(code);
  await byTestId(page, 'auth-confirm').click();
  await page.getByText('Your account is confirmed: sign in.').waitFor();
  await byTestId(page, 'auth-email').fill(person.email);
  await byTestId(page, 'auth-password').fill('not my password at all');
  await byTestId(page, 'auth-signin').click();
  await byTestId(page, 'auth-error').getByText('Wrong e-mail address or password.').waitFor();
  await signIn(page, person);
  await page.getByRole('heading', { level: 2, name: 'Items' }).waitFor();
  await shot(page, 'signed-in');

  await byTestId(page, 'auth-signout').click();
  await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
  await page.getByText('You are signed out.').waitFor();
  await shot(page, 'sign-in');
  assert.equal(await byTestId(page, 'auth-user').count(), 0);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'no token left in the tab');
  assert.equal((await rest('GET', '/items', undefined, null)).status, 401, 'the API refuses a caller with no token');
  assert.deepEqual(errors, []);
  await context.close();
});

test('photos: two uploads become two 200 px thumbnails; a text file named .jpg shows why it failed', async () => {
  const { context, page, errors } = await open('#/photos');
  const started = Date.now();
  await byTestId(page, 'photo-input').setInputFiles([join(FIXTURES, 'photo-1.jpg'), join(FIXTURES, 'photo-2.png')]);
  await page.waitForFunction(() => {
    const images = [...document.querySelectorAll('[data-testid="photo-thumbnail"]')];
    return images.length === 2 && images.every((image) => image.complete && image.naturalWidth === 200);
  }, null, { timeout: 90_000 });
  console.log(`photos: drop -> both thumbnails shown in ${Date.now() - started} ms`);

  const failedAt = Date.now();
  await byTestId(page, 'photo-input').setInputFiles(join(FIXTURES, 'not-a-photo.jpg'));
  const error = byTestId(page, 'photo-error');
  await error.waitFor({ timeout: 90_000 });
  console.log(`photos: drop -> failure shown in ${Date.now() - failedAt} ms`);
  assert.match(await error.textContent(), /not an image/);
  assert.equal(await byTestId(page, 'photo-thumbnail').count(), 2);
  await shot(page, 'photos');

  // The album outlives the page: reloaded, it shows all three, newest (the failed one) first.
  await page.reload();
  await byTestId(page, 'photo-card').nth(2).waitFor();
  assert.equal(await byTestId(page, 'photo-card').count(), 3);
  await byTestId(page, 'photo-card').first().getByText(/not an image/).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="photo-thumbnail"]').length === 2);
  // Deleting one takes it out of the page and out of the album the API answers.
  const album = async () => (await rest('GET', '/photos')).body.items.map((photo) => photo.filename);
  const [newest, ...older] = await album();
  assert.equal(newest, 'not-a-photo.jpg');
  assert.deepEqual(older.sort(), ['photo-1.jpg', 'photo-2.png'], 'the two dropped together, in either order');
  await byTestId(page, 'photo-card').first().getByRole('button', { name: 'Delete not-a-photo.jpg' }).click();
  await page.getByText('Deleted not-a-photo.jpg.').waitFor();
  assert.equal(await byTestId(page, 'photo-card').count(), 2);
  assert.equal((await album()).includes('not-a-photo.jpg'), false);
  assert.deepEqual(errors, []);
  await context.close();
});

test('chat: two people in one room in Korean and emoji, history paged back on scroll, a third room hears nothing', async () => {
  const room = '서울 모임 ☕';
  // Older history than one page, so scrolling up has something to fetch.
  // Ann's, posted with her token (the name is the token's, never the body's).
  for (let i = 0; i < 25; i += 1) {
    const posted = await rest('POST', `/rooms/${encodeURIComponent(room)}/messages`, { text: `older ${i}` });
    assert.equal(posted.status, 201, JSON.stringify(posted.body));
  }
  const someoneElse = await rest('POST', `/rooms/${encodeURIComponent(room)}/messages`, { user: '김민수', text: 'not Ann' });
  assert.equal(someoneElse.status, 403, 'nobody posts under another person\'s name');
  const join = async (name, where) => {
    const as = name === PERSON.name ? PERSON : { name, ...PEOPLE[name] };
    const session = await open('#/chat', { viewport: { width: 390, height: 844 }, as });
    await byTestId(session.page, 'chat-room').fill(where);
    await byTestId(session.page, 'chat-join').click();
    await session.page.getByText(`You are in ${where} as ${name}.`).waitFor();
    return session;
  };
  const minsu = await join('김민수', room);
  const messages = byTestId(minsu.page, 'chat-message');
  await eventually('first history page', async () => (await messages.count()) === 20);
  await minsu.page.locator('.log').evaluate((log) => { log.scrollTop = 0; });
  await eventually('older history on scroll', async () => (await messages.count()) === 25);
  assert.equal(await messages.first().locator('.who').textContent(), PERSON.name);
  assert.match(await messages.first().textContent(), /older 0/);

  const zoe = await join('Zoë 🎉', room);
  const elsewhere = await join(PERSON.name, 'elsewhere');

  const said = '안녕하세요 👋🏽 — welcome, Zoë!';
  await byTestId(minsu.page, 'chat-text').fill(said);
  await byTestId(minsu.page, 'chat-send').click();
  const reply = 'Hi 김민수 🇰🇷👩‍👩‍👧';
  const heard = async (session, text) => eventually(`"${text}" heard`, () => session.page.evaluate((wanted) =>
    [...document.querySelectorAll('[data-testid="chat-message"]')]
      .some((li) => li.childNodes[1] && li.childNodes[1].textContent === wanted), text));
  await heard(zoe, said);
  await byTestId(zoe.page, 'chat-text').fill(reply);
  await byTestId(zoe.page, 'chat-send').click();
  await heard(minsu, reply);
  await heard(zoe, reply);
  const sender = await zoe.page.evaluate((wanted) => [...document.querySelectorAll('[data-testid="chat-message"]')]
    .find((li) => li.childNodes[1].textContent === wanted).querySelector('.who').textContent, said);
  assert.equal(sender, '김민수', 'the sender is the name the ticket carried');

  await eventually('both in the member list', async () => {
    const names = await byTestId(minsu.page, 'chat-member').allTextContents();
    return names.length === 2 && names.includes('김민수') && names.includes('Zoë 🎉');
  }, 15_000);
  const history = await rest('GET', `/rooms/${encodeURIComponent(room)}/messages`, undefined);
  assert.deepEqual(history.body.items.slice(0, 2).map((m) => [m.user, m.text]), [['Zoë 🎉', reply], ['김민수', said]]);

  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(await byTestId(elsewhere.page, 'chat-message').count(), 0, 'another room hears nothing');
  assert.deepEqual(await byTestId(elsewhere.page, 'chat-member').allTextContents(), [PERSON.name]);

  await shot(minsu.page, 'chat');
  for (const session of [minsu, zoe, elsewhere]) {
    assert.deepEqual(session.errors, []);
    await session.context.close();
  }
});

test('approvals: request one; the e-mailed link opens the confirmation page and its button decides', async () => {
  const { context, page, errors } = await open('#/approvals');
  const manager = `manager-${Date.now()}@example.com`;
  await byTestId(page, 'approval-employee').fill('Søren Ørsted');
  await byTestId(page, 'approval-manager').fill(manager);
  await byTestId(page, 'approval-request').click();
  await page.getByText(`Asked ${manager}`).waitFor();
  // My requests: this one, waiting for the manager.
  const row = byTestId(page, 'approval-row').first();
  await row.getByText(`Promotion of Søren Ørsted, asked of ${manager}: waiting for the manager`).waitFor();
  await shot(page, 'approvals');

  const link = await eventually('the approval e-mail', async () => {
    const response = await fetch(`${API_URL}/_local/mail?to=${encodeURIComponent(manager)}`);
    const mail = await response.json();
    return (mail.messages?.[0]?.links || []).find((l) => l.includes('/approvals/succeed'));
  }, 60_000);
  await page.goto(link);
  await page.getByText('Søren Ørsted').first().waitFor();
  await shot(page, 'approval-confirmation');
  await page.getByRole('button').first().click();
  await page.waitForLoadState();
  assert.match(await page.textContent('body'), /approved/i);
  // Back in the app, the requester sees the outcome.
  await page.goto(`${WEB_URL}#/approvals`);
  await page.locator('[data-testid="approval-row"][data-status="approved"]').getByText('Søren Ørsted').waitFor();
  assert.deepEqual(errors, []);
  await context.close();
});

test('items: create, page through, edit and delete', async () => {
  const { context, page, errors } = await open('#/items');
  const names = Array.from({ length: 6 }, (_, i) => `Lamp ${i + 1} — Ü`);
  for (const name of names) {
    await byTestId(page, 'item-name').fill(name);
    await byTestId(page, 'item-email').fill('lamps@example.com');
    await byTestId(page, 'item-create').click();
    await page.getByText(`Created ${name}.`).waitFor();
  }
  const rows = byTestId(page, 'item-row');
  const seen = async () => (await rows.locator('td:first-child').allTextContents());
  await eventually('a first page of five', async () => (await rows.count()) === 5);
  const firstPage = await seen();
  await byTestId(page, 'items-next').click();
  await eventually('the second page', async () => (await rows.count()) === 1);
  const all = [...firstPage, ...(await seen())];
  assert.deepEqual([...all].sort(), [...names].sort());
  assert.ok(await byTestId(page, 'items-next').isDisabled());
  await byTestId(page, 'items-previous').click();
  await eventually('back to the first page', async () => (await rows.count()) === 5);

  const row = rows.first();
  const id = await row.getAttribute('data-id');
  await row.locator('[data-testid="item-edit"]').click();
  await byTestId(page, 'item-edit-name').fill('Lamp renamed ✨');
  await byTestId(page, 'item-save').click();
  await page.getByText('Renamed to Lamp renamed ✨.').waitFor();
  assert.equal((await rest('GET', `/items/${id}`)).body.name, 'Lamp renamed ✨');
  await shot(page, 'items');

  page.once('dialog', (dialog) => dialog.accept());
  await page.locator(`[data-testid="item-row"][data-id="${id}"] [data-testid="item-delete"]`).click();
  await page.getByText('Deleted Lamp renamed ✨.').waitFor();
  await eventually('the row is gone', async () => (await page.locator(`[data-id="${id}"]`).count()) === 0);
  assert.equal((await rest('GET', `/items/${id}`)).status, 404);
  assert.deepEqual(errors, []);
  await context.close();
});

test('appointments: my contact preference and my booking reach the queue enriched, and I see it listed', async () => {
  const { context, page, errors } = await open('#/appointments');
  const email = PERSON.email;
  await byTestId(page, 'contact-method').selectOption('sms');
  await byTestId(page, 'contact-save').click();
  await page.getByText(`${email} prefers sms.`).waitFor();

  await byTestId(page, 'appointment-patient').fill('Nguyễn Thị Minh Khai');
  await byTestId(page, 'appointment-dentist').fill('Dr. Kim');
  const inAWeek = new Date(Date.now() + 7 * 86_400_000);
  inAWeek.setHours(10, 30, 0, 0);
  const local = new Date(inAWeek.getTime() - inAWeek.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await byTestId(page, 'appointment-starts').fill(local);
  await byTestId(page, 'appointment-book').click();
  const booked = byTestId(page, 'appointment-booked');
  await booked.waitFor();
  assert.match(await booked.textContent(), /Booked Nguyễn Thị Minh Khai with Dr\. Kim/);
  await byTestId(page, 'appointment-row').getByText('Nguyễn Thị Minh Khai with Dr. Kim').waitFor();
  await shot(page, 'appointments');

  await eventually('the enriched message on the queue', async () => {
    const response = await fetch(`${API_URL}/_local/queues/AppointmentQueue`);
    const text = await response.text();
    return text.includes(email) && /"preferredMethod"\s*:\s*"sms"|\\"preferredMethod\\":\\"sms\\"/.test(text);
  }, 30_000);
  assert.deepEqual(errors, []);
  await context.close();
});

test('two people: each signs up, uploads a photo and creates an item in their own browser, and neither sees the other\'s', async () => {
  const sessions = [];
  for (const name of ['Pia Park', 'Quinn Ó Briain']) {
    const person = { name, email: `${name.split(' ')[0].toLowerCase()}-${Date.now()}@example.com`, password: 'correct horse battery staple' };
    const session = await open('#/photos', { signIn: false });
    const { page } = session;
    await signUp(page, person);
    await page.getByRole('heading', { level: 2, name: 'Photos' }).waitFor();
    await byTestId(page, 'photo-input').setInputFiles(join(FIXTURES, 'photo-1.jpg'));
    await page.waitForFunction(() => {
      const images = [...document.querySelectorAll('[data-testid="photo-thumbnail"]')];
      return images.length === 1 && images[0].complete && images[0].naturalWidth === 200;
    }, null, { timeout: 90_000 });
    await page.goto(`${WEB_URL}#/items`);
    await byTestId(page, 'item-name').fill(`${name}'s bicycle`);
    await byTestId(page, 'item-email').fill('bikes@example.com');
    await byTestId(page, 'item-create').click();
    await page.getByText(`Created ${name}'s bicycle.`).waitFor();
    sessions.push({ name, ...session });
  }
  // Both browsers still open, each reloaded (the session survives a reload): their own only.
  for (const { name, context, page, errors } of sessions) {
    await page.reload();
    await byTestId(page, 'auth-user').getByText(name, { exact: true }).waitFor();
    const rows = byTestId(page, 'item-row');
    await rows.first().waitFor();
    assert.deepEqual(await rows.locator('td:first-child').allTextContents(), [`${name}'s bicycle`], name);
    await page.goto(`${WEB_URL}#/photos`);
    await byTestId(page, 'photo-thumbnail').waitFor();
    assert.equal(await byTestId(page, 'photo-card').count(), 1, `${name} sees one photo, their own`);
    assert.deepEqual(errors, [], name);
    await context.close();
  }
});
