/**
 * The device SDK's reconnect backoff (sdk/src/device/client.ts, docs/protocol.md section 13), for
 * load clients that must come back after a gateway restart the way real devices do: exponential
 * with full jitter, reset once a connection that reached READY had lasted `stableMs`.
 * backoff.test.ts checks it against the SDK itself.
 */

export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** A connection that lasted this long after READY resets the attempt count when it is lost. */
  stableMs: number;
}

/** The SDK's defaults. */
export const SDK_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000, stableMs: 5000 };

/** The largest delay of attempt `attempt` (0 for the first retry). */
export const backoffCeiling = (attempt: number, backoff: Backoff): number => Math.min(backoff.maxMs, backoff.initialMs * 2 ** attempt);

/** The delay before attempt `attempt + 1`: uniform in [0, ceiling). */
export const fullJitterDelay = (attempt: number, backoff: Backoff, random: () => number = Math.random): number =>
  random() * backoffCeiling(attempt, backoff);
