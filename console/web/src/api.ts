// Requests to the console's API (docs/console-api.md): JSON in and out, the CSRF header on every
// state-changing request, errors turned into ApiError with the server's own message.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: unknown };
    if (typeof body.error === "string" && body.error) message = body.error;
  } catch {
    // Not JSON (a proxy's page): the status line is all there is.
  }
  return new ApiError(res.status, message);
}

// Called with every 401, so the app can show the login page.
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(f: () => void): void {
  onUnauthenticated = f;
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  const init: RequestInit = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") {
    init.headers = { "X-Faultline-Console": "1", "Content-Type": "application/json" };
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && path !== "/api/session") onUnauthenticated();
    throw err;
  }
  return res;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await send("GET", path)).json()) as T;
}

export async function getText(path: string): Promise<string> {
  return (await send("GET", path)).text();
}

// POST/DELETE; the answer's JSON, or null for an empty answer (204).
export async function post<T>(path: string, body: unknown, method = "POST"): Promise<T | null> {
  const res = await send(method, path, body);
  const text = await res.text();
  return text ? (JSON.parse(text) as T) : null;
}
