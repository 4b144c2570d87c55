/** Operator accounts and their app memberships; signing in, with a throttle on failed attempts. */
import { newId, type Db } from '@mps/shared';
import type { CreatedApp, KeyStore } from './keys.js';
import { decoyHash, hashPassword, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.js';
import type { Operator } from './sessions.js';

/** After this many failed sign-ins in a row, an account takes one attempt per SIGN_IN_LOCK_S. */
export const MAX_FAILED_SIGN_INS = 5;
export const SIGN_IN_LOCK_S = 300;

export const EMAIL_PATTERN = '^[^\\s@]+@[^\\s@]+$';
const EMAIL = new RegExp(EMAIL_PATTERN);

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

export const OperatorErrorCode = {
  INVALID_EMAIL: 'the email address is not one',
  WEAK_PASSWORD: `a password needs ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`,
  OPERATOR_EXISTS: 'an operator with this email exists',
  OPERATOR_NOT_FOUND: 'no operator has this email',
  APP_NOT_FOUND: 'no app has this id',
} as const;
export type OperatorErrorCode = keyof typeof OperatorErrorCode;

/** What the operator command line reports (the HTTP routes never create operators). */
export class OperatorError extends Error {
  constructor(
    readonly code: OperatorErrorCode,
    options?: { cause?: unknown },
  ) {
    super(OperatorErrorCode[code], options);
    this.name = 'OperatorError';
  }
}

export type SignIn = { ok: true; operator: Operator } | { ok: false; retryAfterS?: number };

export interface AppSummary {
  id: string;
  name: string;
  createdAt: string;
}

interface OperatorRow {
  id: string;
  email: string;
  password_hash: string;
  failed_sign_ins: number;
  throttled_for_s: number;
  disabled_at: Date | null;
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) throw new OperatorError('WEAK_PASSWORD');
}

export class OperatorStore {
  constructor(private readonly db: Db) {}

  async create(email: string, password: string): Promise<Operator> {
    const normalized = normalizeEmail(email);
    if (!EMAIL.test(normalized) || normalized.length > 254) throw new OperatorError('INVALID_EMAIL');
    checkPassword(password);
    const id = newId();
    const inserted = await this.db.query('INSERT INTO operators (id, email, password_hash) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING', [
      id,
      normalized,
      await hashPassword(password),
    ]);
    if (inserted.rowCount === 0) throw new OperatorError('OPERATOR_EXISTS');
    return { id, email: normalized };
  }

  async find(email: string): Promise<Operator | undefined> {
    const r = await this.db.query<Operator>('SELECT id, email FROM operators WHERE email = $1', [normalizeEmail(email)]);
    return r.rows[0];
  }

  async list(): Promise<(Operator & { apps: string[]; disabled: boolean })[]> {
    const r = await this.db.query<{ id: string; email: string; apps: string[]; disabled: boolean }>(
      `SELECT o.id, o.email, o.disabled_at IS NOT NULL AS disabled,
              coalesce(array_agg(m.app_id ORDER BY m.app_id) FILTER (WHERE m.app_id IS NOT NULL), '{}') AS apps
       FROM operators o LEFT JOIN app_members m ON m.operator_id = o.id GROUP BY o.id ORDER BY o.email`,
    );
    return r.rows;
  }

  /** Sets a new password, lifts the throttle and signs the operator out everywhere. */
  async setPassword(email: string, password: string): Promise<void> {
    checkPassword(password);
    const hash = await hashPassword(password);
    const r = await this.db.query<{ id: string }>(
      'UPDATE operators SET password_hash = $2, failed_sign_ins = 0, last_failed_at = NULL WHERE email = $1 RETURNING id',
      [normalizeEmail(email), hash],
    );
    const row = r.rows[0];
    if (!row) throw new OperatorError('OPERATOR_NOT_FOUND');
    await this.db.query('DELETE FROM operator_sessions WHERE operator_id = $1', [row.id]);
  }

  /** Disables (or enables again) an account; disabling ends its sessions. */
  async setDisabled(email: string, disabled: boolean): Promise<void> {
    const r = await this.db.query<{ id: string }>(
      `UPDATE operators SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END WHERE email = $1 RETURNING id`,
      [normalizeEmail(email), disabled],
    );
    const row = r.rows[0];
    if (!row) throw new OperatorError('OPERATOR_NOT_FOUND');
    if (disabled) await this.db.query('DELETE FROM operator_sessions WHERE operator_id = $1', [row.id]);
  }

  async addMember(operatorId: string, app: string): Promise<void> {
    try {
      await this.db.query('INSERT INTO app_members (operator_id, app_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [operatorId, app]);
    } catch (cause) {
      // 23503: the app (or operator) does not exist.
      if ((cause as { code?: string }).code === '23503') throw new OperatorError('APP_NOT_FOUND', { cause });
      throw cause;
    }
  }

  async removeMember(operatorId: string, app: string): Promise<boolean> {
    const r = await this.db.query('DELETE FROM app_members WHERE operator_id = $1 AND app_id = $2', [operatorId, app]);
    return r.rowCount === 1;
  }

  async appsOf(operatorId: string): Promise<AppSummary[]> {
    const r = await this.db.query<{ id: string; name: string; created_at: Date }>(
      `SELECT a.id, a.name, a.created_at FROM apps a JOIN app_members m ON m.app_id = a.id
       WHERE m.operator_id = $1 ORDER BY a.name, a.id`,
      [operatorId],
    );
    return r.rows.map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at.toISOString() }));
  }

  /** Creates an app with its first key, and makes the operator its member. */
  async createApp(operatorId: string, name: string, keys: KeyStore): Promise<CreatedApp> {
    const created = await keys.createApp(name);
    try {
      await this.addMember(operatorId, created.app);
    } catch (error) {
      await this.db.query('DELETE FROM apps WHERE id = $1', [created.app]);
      throw error;
    }
    return created;
  }

  /**
   * Checks an email and password. An unknown email costs the same scrypt as a wrong password; an
   * account past MAX_FAILED_SIGN_INS failures is refused without looking at the password until
   * SIGN_IN_LOCK_S after its last failure.
   */
  async signIn(email: string, password: string): Promise<SignIn> {
    const r = await this.db.query<OperatorRow>(
      `SELECT id, email, password_hash, failed_sign_ins, disabled_at,
              CASE WHEN failed_sign_ins >= $2 THEN greatest(0, ceil(extract(epoch FROM last_failed_at + make_interval(secs => $3) - now())))::int
                   ELSE 0 END AS throttled_for_s
       FROM operators WHERE email = $1`,
      [normalizeEmail(email), MAX_FAILED_SIGN_INS, SIGN_IN_LOCK_S],
    );
    const row = r.rows[0];
    if (!row) {
      await verifyPassword(password, await decoyHash());
      return { ok: false };
    }
    if (row.throttled_for_s > 0) return { ok: false, retryAfterS: row.throttled_for_s };
    const matches = await verifyPassword(password, row.password_hash);
    if (!matches || row.disabled_at !== null) {
      await this.db.query('UPDATE operators SET failed_sign_ins = failed_sign_ins + 1, last_failed_at = now() WHERE id = $1', [row.id]);
      return { ok: false };
    }
    if (row.failed_sign_ins > 0) await this.db.query('UPDATE operators SET failed_sign_ins = 0, last_failed_at = NULL WHERE id = $1', [row.id]);
    return { ok: true, operator: { id: row.id, email: row.email } };
  }
}
