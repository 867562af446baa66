// Signing in with the stack's Cognito user pool, as the page's own code: the user pools API's
// public operations are plain JSON POSTs (X-Amz-Target names the operation), so the page calls
// them with fetch rather than shipping an SDK (the app has no build step, and Amplify's
// sign-in defaults to SRP, which this pool's app client does not allow: USER_PASSWORD_AUTH only,
// over TLS, see template.yaml).
//
// The tokens live in sessionStorage: per tab, gone when the tab closes, never sent by the
// browser on its own (no cookie, so no cross-site request can use them). A script injected into
// the page could read them, which the CSP (script-src 'self', no inline script) guards against.
// The ID token goes to the REST API; it is refreshed five minutes before it expires.

const TARGET = 'AWSCognitoIdentityProviderService.';
const STORE = 'serverless-rust-kit.session';
const REFRESH_EARLY_MS = 5 * 60 * 1000;

// What a person reads for each refusal, instead of Cognito's exception names.
const WORDS = {
  NotAuthorizedException: 'Wrong e-mail address or password.',
  UserNotConfirmedException: 'This account is not confirmed yet: enter the code we sent to your e-mail.',
  UsernameExistsException: 'An account with this e-mail address exists already: sign in instead.',
  CodeMismatchException: 'That code is not the one we sent: check the e-mail and try again.',
  ExpiredCodeException: 'That code has expired: ask for a new one.',
  InvalidPasswordException: 'Choose a longer password: at least 12 characters.',
  LimitExceededException: 'Too many attempts: wait a few minutes and try again.',
  TooManyRequestsException: 'Too many attempts: wait a few minutes and try again.',
  TooManyFailedAttemptsException: 'Too many attempts: wait a few minutes and try again.',
  CodeDeliveryFailureException: 'The code could not be sent: check the e-mail address.',
  InvalidParameterException: 'Check the e-mail address and the name, then try again.',
  UserNotFoundException: 'Wrong e-mail address or password.',
};

export class AuthError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// The JWT's claims (read only for the name and expiry the page shows; the API verifies).
function claims(token) {
  const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

export function auth(config) {
  let timer = null; // the scheduled refresh, once there is a session
  const listeners = new Set();

  // Most operations name the app client; GlobalSignOut takes the access token alone.
  const client = (body) => ({ ClientId: config.userPoolClientId, ...body });

  async function call(operation, body) {
    let response;
    try {
      response = await fetch(config.cognitoEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': TARGET + operation },
        body: JSON.stringify(body),
      });
    } catch {
      throw new AuthError('network', 'Sign-in cannot be reached; check your connection and try again.');
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      // `__type` may carry a namespace (`com.amazonaws...#Name`) or a suffix (`Name:http://...`).
      const code = String(data.__type || '').split('#').pop().split(':')[0];
      throw new AuthError(code, WORDS[code] || 'Signing in failed; try again in a moment.');
    }
    return data;
  }

  function load() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE));
    } catch {
      return null;
    }
  }

  // The refresh, five minutes before the ID token expires.
  function schedule(session) {
    clearTimeout(timer);
    timer = session ? setTimeout(refresh, Math.max(0, session.expiresAt - REFRESH_EARLY_MS - Date.now())) : null;
  }

  function save(session) {
    if (session) sessionStorage.setItem(STORE, JSON.stringify(session));
    else sessionStorage.removeItem(STORE);
    schedule(session);
    for (const listener of listeners) listener(session);
  }

  function fromResult(result, refreshToken) {
    const idClaims = claims(result.IdToken);
    return {
      idToken: result.IdToken,
      accessToken: result.AccessToken,
      refreshToken: result.RefreshToken || refreshToken,
      expiresAt: idClaims.exp * 1000,
      email: idClaims.email,
      name: idClaims.name || idClaims.email,
    };
  }

  async function refresh() {
    const session = load();
    if (!session) return null;
    try {
      const answer = await call('InitiateAuth', client({
        AuthFlow: 'REFRESH_TOKEN_AUTH',
        AuthParameters: { REFRESH_TOKEN: session.refreshToken },
      }));
      const renewed = fromResult(answer.AuthenticationResult, session.refreshToken);
      save(renewed);
      return renewed;
    } catch (error) {
      // A revoked or expired refresh token: the person signs in again. A network failure keeps
      // the session and tries again in a minute.
      if (error.code === 'network') timer = setTimeout(refresh, 60_000);
      else save(null);
      return null;
    }
  }

  return {
    // The signed-in person, or null; an expired session is renewed first.
    async session() {
      const session = load();
      if (!session) return null;
      if (session.expiresAt - Date.now() < REFRESH_EARLY_MS) return refresh();
      // A session from before a reload: its refresh is scheduled once, and nobody is told
      // anything changed.
      if (timer === null) schedule(session);
      return session;
    },
    current: load,
    onChange(listener) {
      listeners.add(listener);
    },
    async signUp(email, password, name) {
      return call('SignUp', client({
        Username: email,
        Password: password,
        UserAttributes: [{ Name: 'email', Value: email }, { Name: 'name', Value: name }],
      }));
    },
    confirm: (email, code) => call('ConfirmSignUp', client({ Username: email, ConfirmationCode: code })),
    resendCode: (email) => call('ResendConfirmationCode', client({ Username: email })),
    async signIn(email, password) {
      const answer = await call('InitiateAuth', client({
        AuthFlow: 'USER_PASSWORD_AUTH',
        AuthParameters: { USERNAME: email, PASSWORD: password },
      }));
      if (!answer.AuthenticationResult) throw new AuthError('challenge', 'This account needs a step the app does not offer; ask an administrator.');
      const session = fromResult(answer.AuthenticationResult);
      save(session);
      return session;
    },
    // Ends the session: the page forgets the tokens and Cognito invalidates the person's refresh
    // tokens (GlobalSignOut: every device, as "sign out" promises on a shared computer). An ID
    // token the API already saw stays valid until it expires, as any JWT does.
    async signOut() {
      const session = load();
      save(null);
      if (session) await call('GlobalSignOut', { AccessToken: session.accessToken }).catch(() => {});
    },
    forgotPassword: (email) => call('ForgotPassword', client({ Username: email })),
    resetPassword: (email, code, password) => call('ConfirmForgotPassword', client({ Username: email, ConfirmationCode: code, Password: password })),
    // The session ended elsewhere (the API answered 401): back to the sign-in page.
    expired: () => save(null),
  };
}
