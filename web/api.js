// The REST API as the pages use it: one base URL and key (from config.json), the signed-in
// person's ID token, JSON in and out, and every failure as an ApiError carrying the API's own
// error message. A 401 means the session ended: the app returns to the sign-in page.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export function api(config, auth) {
  async function call(method, path, { body, query, headers = {} } = {}) {
    const session = await auth.session();
    if (!session) {
      auth.expired();
      throw new ApiError(401, 'signed_out', 'Sign in to continue.');
    }
    const url = new URL(config.apiUrl.replace(/\/$/, '') + path);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
    }
    const init = { method, headers: { 'x-api-key': config.apiKey, authorization: session.idToken, ...headers } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, 'network', 'The API cannot be reached; check your connection and try again.');
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (response.status === 401) {
      auth.expired();
      throw new ApiError(401, 'signed_out', 'Your session ended: sign in again.');
    }
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      const retryAfter = response.headers.get('retry-after');
      const fallback = response.status >= 500
        ? 'The service is busy; try again in a moment.'
        : `The request was refused (${response.status}).`;
      throw new ApiError(response.status, error.code || 'http_' + response.status, error.message || fallback, retryAfter);
    }
    return data;
  }
  return {
    get: (path, query) => call('GET', path, { query }),
    post: (path, body, headers) => call('POST', path, { body, headers }),
    put: (path, body) => call('PUT', path, { body }),
    del: (path) => call('DELETE', path),
  };
}

// One path segment, exactly as typed (a room name in any script, an e-mail address).
export const segment = (value) => encodeURIComponent(value);
