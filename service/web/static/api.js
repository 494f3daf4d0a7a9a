// The API client: the key lives in sessionStorage only and travels in the X-API-Key header, never in a URL.

const KEY = 'branchnet.key';
export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, detail, errors) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.errors = errors || [];
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

function describe(status, body, fallback) {
  if (body && typeof body.detail === 'string') return body.detail;
  if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg || JSON.stringify(d)).join('; ');
  return fallback || `the server answered ${status}`;
}

/**
 * Call the API: `request('GET', '/regions')`. Options: json (a body sent as JSON), form (a FormData), as
 * ('json' default, 'text' or 'blob'), key (a key to try instead of the stored one). Throws ApiError for a 4xx/5xx
 * (with the API's detail and, for 422, its field errors) and for a network failure (status 0).
 */
export async function request(method, path, { json, form, as = 'json', key: tryKey } = {}) {
  const headers = { Accept: as === 'json' ? 'application/json' : '*/*' };
  const stored = tryKey ?? key.get();
  if (stored) headers['X-API-Key'] = stored;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) body = form;
  let response;
  try {
    response = await fetch(path.startsWith('/') && !path.startsWith(API) && !path.startsWith('/ui/') ? API + path : path,
      { method, headers, body, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' });
  } catch (err) {
    throw new ApiError(0, 'the server cannot be reached; check that branchnet serve is running');
  }
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, describe(response.status, data, response.statusText), data && data.errors);
  }
  if (response.status === 204) return null;
  if (as === 'text') return response.text();
  if (as === 'blob') return response.blob();
  return response.json();
}

/** Download an API file with the key in its header: fetch it, then save the Blob under `filename`. */
export async function download(path, filename) {
  const blob = await request('GET', path, { as: 'blob' });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.rel = 'noopener';
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob;
}
