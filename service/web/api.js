// The page's client of the public JSON API: every call goes through `request`, errors become ApiError.

const KEY_STORAGE = "logitsearch.apiKey";

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(describe(status, detail, path));
    this.status = status;
    this.detail = detail;
  }
}

function describe(status, detail, path) {
  let text;
  if (Array.isArray(detail)) {
    text = detail.map((e) => (e.loc ? `${e.loc.filter((p) => p !== "body").join(".")}: ${e.msg}` : String(e.msg ?? e))).join("; ");
  } else {
    text = String(detail);
  }
  if (status === 401) text += " — enter the API key at the top of the page";
  return status ? `${text} (HTTP ${status} from ${path})` : text;
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, "X-API-Key": key } : extra;
}

async function send(path, options) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers) });
  } catch (err) {
    throw new ApiError(0, `the service cannot be reached (${err.message})`, path);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = body.detail ?? JSON.stringify(body);
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(response.status, detail, path);
  }
  return response;
}

export async function getJson(path) {
  return (await send(path, { method: "GET" })).json();
}

export async function postJson(path, body) {
  const options = { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } };
  return (await send(path, options)).json();
}

export async function deleteJson(path) {
  return (await send(path, { method: "DELETE" })).json();
}

export async function postFiles(path, field, files, fields = {}) {
  const form = new FormData();
  for (const file of files) form.append(field, file);
  for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
  return (await send(path, { method: "POST", body: form })).json();
}

// An object URL of an item's thumbnail, or null when it has none (404).
export async function thumbnailUrl(prefix, id) {
  try {
    const response = await send(`${prefix}/items/${encodeId(id)}/thumbnail`, { method: "GET" });
    return URL.createObjectURL(await response.blob());
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

// An id is one path segment whatever it holds: its slashes are sent as %2F (the server decodes them back), so
// `..` inside an id can never climb out of the index's URL into another index's item.
export function encodeId(id) {
  return encodeURIComponent(id);
}

export function indexPrefix(name) {
  return `/v1/indexes/${encodeURIComponent(name)}`;
}
