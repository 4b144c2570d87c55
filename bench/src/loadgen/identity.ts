/**
 * Bench devices get identities derived from a run seed and an index: the database is seeded with
 * INSERT ... SELECT, and each load client computes its own devices' credentials, so no list of a
 * million secrets is shipped anywhere. DEVICE_ROWS and the two functions must agree.
 */
import { createHash } from 'node:crypto';

export function deviceId(seed: string, index: number): string {
  const hex = createHash('md5').update(`${seed}:${index}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function deviceSecret(seed: string, index: number): string {
  return createHash('sha256').update(`${seed}:secret:${index}`).digest('hex');
}

/**
 * Rows (id, app_id, secret_hash, platform) of devices [$3, $4) of app $2 for seed $1, stored the way
 * the gateway checks them: secret_hash = sha256 of the secret's UTF-8 bytes.
 */
export const DEVICE_ROWS = `
  SELECT md5($1::text || ':' || i)::uuid AS id,
         $2::text AS app_id,
         sha256(convert_to(encode(sha256(convert_to($1::text || ':secret:' || i, 'UTF8')), 'hex'), 'UTF8')) AS secret_hash,
         'android' AS platform
  FROM generate_series($3::int, $4::int - 1) AS i`;

export const INSERT_DEVICES = `INSERT INTO devices (id, app_id, secret_hash, platform) ${DEVICE_ROWS}`;
