/**
 * Console sessions: a random token in an HttpOnly, SameSite=Strict cookie, stored as its SHA-256
 * with an expiry; and the CSRF token bound to it, which state-changing requests send as a header.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '@mps/shared';

export interface Operator {
  id: string;
  email: string;
}

export interface Session {
  operator: Operator;
  expiresAt: Date;
}

/** The header a state-changing console request carries its CSRF token in. */
export const CSRF_HEADER = 'x-mps-csrf';
/** The header naming the app a console request acts on. */
export const APP_HEADER = 'mps-app';

const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const hashOf = (token: string): Buffer => createHash('sha256').update(token).digest();

/**
 * The CSRF token of a session: derived from its secret token, so it needs no storage and is
 * worthless without the cookie (a page on another site can read neither).
 */
export const csrfTokenOf = (token: string): string => createHmac('sha256', token).update('mps-console-csrf').digest('base64url');

export function csrfMatches(token: string, header: string | undefined): boolean {
  if (header === undefined) return false;
  const expected = Buffer.from(csrfTokenOf(token));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface CookiePolicy {
  /** `Secure` (and the `__Host-` name that requires it); off only for plain-http access from another host. */
  secure: boolean;
  ttlS: number;
}

/** `__Host-` makes the browser refuse the cookie unless it is Secure, has Path=/ and no Domain. */
export const cookieName = (policy: CookiePolicy): string => (policy.secure ? '__Host-mps_session' : 'mps_session');

const cookie = (policy: CookiePolicy, value: string, maxAgeS: number): string =>
  `${cookieName(policy)}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${policy.secure ? '; Secure' : ''}`;

export const sessionCookie = (policy: CookiePolicy, token: string): string => cookie(policy, token, policy.ttlS);
export const clearedCookie = (policy: CookiePolicy): string => cookie(policy, '', 0);

/** The session token from a Cookie header, if it holds one of the right shape. */
export function sessionTokenOf(policy: CookiePolicy, header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const name = `${cookieName(policy)}=`;
  for (const part of header.split(';')) {
    const pair = part.trim();
    if (pair.startsWith(name)) {
      const value = pair.slice(name.length);
      return TOKEN.test(value) ? value : undefined;
    }
  }
  return undefined;
}

export const hasSessionCookie = (policy: CookiePolicy, header: string | undefined): boolean =>
  header !== undefined && header.split(';').some((part) => part.trim().startsWith(`${cookieName(policy)}=`));

export class SessionStore {
  constructor(
    private readonly db: Db,
    private readonly ttlS: number,
  ) {}

  /** Opens a session; also forgets the operator's sessions that have expired. */
  async open(operatorId: string): Promise<{ token: string; expiresAt: Date }> {
    const token = randomBytes(32).toString('base64url');
    await this.db.query('DELETE FROM operator_sessions WHERE operator_id = $1 AND expires_at <= now()', [operatorId]);
    const r = await this.db.query<{ expires_at: Date }>(
      `INSERT INTO operator_sessions (token_hash, operator_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
       RETURNING expires_at`,
      [hashOf(token), operatorId, this.ttlS],
    );
    return { token, expiresAt: (r.rows[0] as { expires_at: Date }).expires_at };
  }

  /** The live session of this token (not expired, its operator not disabled). */
  async find(token: string): Promise<Session | undefined> {
    const r = await this.db.query<{ id: string; email: string; expires_at: Date }>(
      `SELECT o.id, o.email, s.expires_at FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
       WHERE s.token_hash = $1 AND s.expires_at > now() AND o.disabled_at IS NULL`,
      [hashOf(token)],
    );
    const row = r.rows[0];
    return row && { operator: { id: row.id, email: row.email }, expiresAt: row.expires_at };
  }

  /**
   * The live session of this token, whether its operator is a member of `app`, and that app's own
   * rate limit: one query per request.
   */
  async findForApp(token: string, app: string): Promise<(Session & { member: boolean; rateLimitPerS: number | null }) | undefined> {
    const r = await this.db.query<{ id: string; email: string; expires_at: Date; member: boolean; rate_limit_per_s: number | null }>(
      `SELECT o.id, o.email, s.expires_at, (m.app_id IS NOT NULL) AS member, a.rate_limit_per_s
       FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
       LEFT JOIN app_members m ON m.operator_id = o.id AND m.app_id = $2
       LEFT JOIN apps a ON a.id = m.app_id
       WHERE s.token_hash = $1 AND s.expires_at > now() AND o.disabled_at IS NULL`,
      [hashOf(token), app],
    );
    const row = r.rows[0];
    return (
      row && { operator: { id: row.id, email: row.email }, expiresAt: row.expires_at, member: row.member, rateLimitPerS: row.rate_limit_per_s }
    );
  }

  async close(token: string): Promise<void> {
    await this.db.query('DELETE FROM operator_sessions WHERE token_hash = $1', [hashOf(token)]);
  }
}
