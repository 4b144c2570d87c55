/**
 * Whether an error says that PostgreSQL or NATS is down or out of reach, rather than that the
 * request was wrong or our code is: the API answers it with 503 UNAVAILABLE and a Retry-After (the
 * same request will do once the dependency is back), not 500.
 */
import { errors as natsErrors } from '@nats-io/transport-node';

/** PostgreSQL SQLSTATEs of a server going away or refusing connections (classes 08 and 57P, 53300). */
const PG_STATES = new Set(['08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '53300']);
/** Socket errors on the way to either. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTCONN']);
/** node-postgres says these in words only. */
const PG_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;
const NATS_ERRORS = [
  natsErrors.ClosedConnectionError,
  natsErrors.ConnectionError,
  natsErrors.DrainingConnectionError,
  natsErrors.TimeoutError,
  natsErrors.NoRespondersError,
];

export function isOutage(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (PG_STATES.has(code) || SOCKET_CODES.has(code))) return true;
    if (NATS_ERRORS.some((kind) => e instanceof kind)) return true;
    if (e instanceof natsErrors.RequestError && /disconnect/.test(e.message)) return true;
    if (PG_MESSAGES.test(e.message)) return true;
  }
  return false;
}
