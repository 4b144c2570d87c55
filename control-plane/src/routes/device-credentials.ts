/**
 * POST /v1/devices/{id}/revoke: a lost or stolen device, or a leaked device secret. The secret stops
 * authenticating for good, connect tokens issued up to the second of the revocation are refused,
 * and the device's connections are closed on every gateway (4017 revoked). Revoking again changes
 * nothing and answers the first revocation (docs/api.md, docs/protocol.md section 6.6).
 */
import { randomBytes } from 'node:crypto';
import { headers as natsHeaders } from '@nats-io/transport-node';
import Type from 'typebox';
import { CONTROL_HEADER, DEVICE_REVOKED, REVOKED_AT_HEADER, type Db, type Logger, type NatsConnection, type Subjects } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';

/**
 * A connection whose authentication read the device's row just before the revocation subscribes to
 * the device's subject a moment later, and may miss the first word: the gateways are told again then.
 */
const TELL_AGAIN_MS = 1000;

const DeviceParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const Revoked = Type.Object({
  id: Type.String(),
  revokedAt: Type.String({ description: 'when the credentials were first revoked; connect tokens must be issued after its second' }),
});

export function deviceCredentialRoutes(app: Api, deps: { db: Db; nc: NatsConnection; subjects: Subjects; log: Logger }): void {
  const pending = new Set<NodeJS.Timeout>();
  app.addHook('onClose', async () => {
    for (const timer of pending) clearTimeout(timer);
  });

  function closeConnections(appId: string, device: string, revokedAt: Date): void {
    const h = natsHeaders();
    h.set(CONTROL_HEADER, DEVICE_REVOKED);
    h.set(REVOKED_AT_HEADER, String(revokedAt.getTime()));
    deps.nc.publish(deps.subjects.device(appId, device), new Uint8Array(0), { headers: h });
  }

  app.post('/v1/devices/:id/revoke', { schema: { params: DeviceParams, response: { 200: Revoked } } }, async (request) => {
    const appId = appOf(request);
    const { id } = request.params;
    // The hash of a secret nobody holds replaces the old one: that secret is dead whatever becomes of revoked_at.
    const r = await deps.db.query<{ revoked_at: Date }>(
      `UPDATE devices SET revoked_at = coalesce(revoked_at, now()),
         secret_hash = CASE WHEN revoked_at IS NULL THEN $3 ELSE secret_hash END
       WHERE id = $1 AND app_id = $2
       RETURNING revoked_at`,
      [id, appId, randomBytes(32)],
    );
    const revokedAt = r.rows[0]?.revoked_at;
    if (!revokedAt) throw new ApiError('DEVICE_NOT_FOUND', `no device ${id} in this app`);
    // Told again on a repeated call too: harmless, and it reaches a gateway that missed the first.
    closeConnections(appId, id, revokedAt);
    const again = setTimeout(() => {
      pending.delete(again);
      try {
        closeConnections(appId, id, revokedAt);
      } catch (error) {
        deps.log.error({ err: error, device: id }, 'revocation not told again to the gateways');
      }
    }, TELL_AGAIN_MS);
    again.unref();
    pending.add(again);
    return { id, revokedAt: revokedAt.toISOString() };
  });
}
