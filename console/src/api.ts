/**
 * Talking to the control plane: /console/api for the session, and the public /v1 API for
 * everything else, authenticated by the session cookie, the CSRF token and the Mps-App header.
 */

/** An error answer of the API: its stable code, a message for people, and the field at fault. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

export interface AppSummary {
  id: string;
  name: string;
  createdAt: string;
}

export interface SessionInfo {
  operator: { id: string; email: string };
  csrfToken: string;
  expiresAt: string;
  apps: AppSummary[];
}

let csrfToken = '';
const signedOutListeners = new Set<() => void>();

/** Called when the server says the session is gone (expired, signed out elsewhere). */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

async function call<T>(method: string, path: string, options: { body?: unknown; app?: string } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (method !== 'GET') headers['x-mps-csrf'] = csrfToken;
  if (options.app !== undefined) headers['mps-app'] = options.app;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    });
  } catch (cause) {
    throw new ApiFailure(0, 'NETWORK', `the control plane did not answer (${(cause as Error).message})`);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new ApiFailure(response.status, 'BAD_RESPONSE', `the control plane answered ${response.status} with something else than JSON`);
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
    const failure = new ApiFailure(response.status, error?.code ?? 'HTTP_' + response.status, error?.message ?? response.statusText, error?.field);
    if (failure.code === 'AUTH_NO_SESSION') for (const listener of signedOutListeners) listener();
    throw failure;
  }
  return parsed as T;
}

export const consoleApi = {
  async signIn(email: string, password: string): Promise<SessionInfo> {
    const session = await call<SessionInfo>('POST', '/console/api/sign-in', { body: { email, password } });
    csrfToken = session.csrfToken;
    return session;
  },
  async session(): Promise<SessionInfo> {
    const session = await call<SessionInfo>('GET', '/console/api/session');
    csrfToken = session.csrfToken;
    return session;
  },
  async signOut(): Promise<void> {
    await call('POST', '/console/api/sign-out');
    csrfToken = '';
  },
  createApp: (name: string) =>
    call<{ app: AppSummary; key: { id: string; secret: string } }>('POST', '/console/api/apps', { body: { name } }),
};

/** The /v1 API acting on one app. */
export function v1(app: string) {
  return {
    get: <T>(path: string, query?: Record<string, string | undefined>) => {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined && value !== '') params.set(name, value);
      const q = params.toString();
      return call<T>('GET', `/v1${path}${q ? `?${q}` : ''}`, { app });
    },
    post: <T>(path: string, body?: unknown) => call<T>('POST', `/v1${path}`, { app, body }),
    put: <T>(path: string, body: unknown) => call<T>('PUT', `/v1${path}`, { app, body }),
    delete: (path: string) => call<void>('DELETE', `/v1${path}`, { app }),
  };
}

export type V1 = ReturnType<typeof v1>;

/** A path segment, percent-encoded (user ids and template names go into paths). */
export const seg = (value: string): string => encodeURIComponent(value);
