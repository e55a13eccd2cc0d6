// The gateway's JSON API (/api/v1). Same origin: the session is an HttpOnly cookie the
// browser sends by itself; every state-changing request also carries the session's
// CSRF token (X-CSRF-Token), which is kept in memory only (a reload asks GET /api/v1/me).
// Errors become ApiError {status, code, message, field}. A 401 on anything but the
// sign-in itself calls the handler set with onUnauthorized() (the app goes back to the
// login screen) before the promise rejects.

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

const CODE_BY_STATUS = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict',
  413: 'too_large', 422: 'invalid_field', 423: 'account_locked', 429: 'too_many_attempts',
  503: 'service_unavailable',
};

let csrfToken = null;
let unauthorizedHandler = null;
let answerHandler = null;

export function setCsrfToken(token) {
  csrfToken = typeof token === 'string' && token ? token : null;
}

export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

// fn({method, path, status, code}) after every request: status 0 when no answer came at all
// (network error). offline.js uses it to tell which service is down (degraded mode).
export function onAnswer(fn) {
  answerHandler = fn;
}

function answered(method, path, status, code) {
  try {
    answerHandler?.({ method, path, status, code });
  } catch (error) {
    console.error(error);
  }
}

export function isAbort(error) {
  return error?.name === 'AbortError';
}

// path: "/api/v1/users"; query: object (empty values left out); body: object (JSON).
// options.signIn: a 401 is the sign-in's own answer, not an expired session.
// options.raw: {data, type} sent as the body as it is (a CSV file: type 'text/csv').
// A refused request's whole JSON answer is kept as error.data (an import's line errors).
export async function api(method, path, { query, body, raw, signal, signIn = false } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null || value === '') continue;
      params.append(key, String(value));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  } else if (raw) {
    headers['Content-Type'] = raw.type;
    init.body = raw.data;
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;

  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (isAbort(error)) throw error;
    answered(method, path, 0, 'network');
    throw new ApiError(0, 'network', String(error?.message ?? error));
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  answered(method, path, response.status,
    typeof data?.error?.code === 'string' ? data.error.code : null);
  if (!response.ok) {
    const e = data && typeof data.error === 'object' && data.error ? data.error : {};
    const error = new ApiError(response.status,
      typeof e.code === 'string' ? e.code : (CODE_BY_STATUS[response.status] ?? 'http_error'),
      typeof e.message === 'string' ? e.message : '',
      typeof e.field === 'string' ? e.field : null);
    error.data = data && typeof data === 'object' ? data : null;
    if (response.status === 401 && !signIn && unauthorizedHandler) unauthorizedHandler(error);
    throw error;
  }
  return data ?? {};
}
