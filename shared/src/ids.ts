import { randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/** Message and device ids: UUIDv7, time-ordered so that index inserts stay local. */
export const newId = (): string => uuidv7();

/** A short public identifier with a kind prefix, e.g. `app_3kq...`. */
export function newPublicId(kind: 'app' | 'key'): string {
  return `${kind}_${randomBytes(12).toString('base64url')}`;
}

/** A high-entropy secret (256 bits), base64url. */
export const newSecret = (): string => randomBytes(32).toString('base64url');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isUuid = (value: string): boolean => UUID.test(value);
