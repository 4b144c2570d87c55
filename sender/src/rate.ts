/**
 * Per-vendor send rates of one sender process: a token bucket per vendor (one second of burst)
 * that makes a send wait for its turn rather than exceed the rate the operator set.
 */
import { Vendor } from '@mps/shared';

export class RateLimitsError extends Error {
  override name = 'RateLimitsError';
}

/** "apns=2000,fcm=500": sends per second per vendor; vendors not named are not limited. */
export function parseRateLimits(text: string): Partial<Record<Vendor, number>> {
  const limits: Partial<Record<Vendor, number>> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const [name, value] = part.split('=');
    const rate = Number(value);
    if (!(Vendor as readonly string[]).includes(name ?? '') || !Number.isInteger(rate) || rate < 1) {
      throw new RateLimitsError(`"${part}" is not vendor=sends-per-second (vendors: ${Vendor.join(', ')})`);
    }
    limits[name as Vendor] = rate;
  }
  return limits;
}

export class VendorRates {
  private readonly buckets = new Map<Vendor, { tokens: number; at: number; queue: Promise<void> }>();

  constructor(private readonly limits: Partial<Record<Vendor, number>>) {}

  /** Resolves when `n` sends to `vendor` fit in its rate (at once when it has none). */
  take(vendor: Vendor, n: number): Promise<void> {
    const rate = this.limits[vendor];
    if (rate === undefined) return Promise.resolve();
    let bucket = this.buckets.get(vendor);
    if (!bucket) {
      bucket = { tokens: rate, at: Date.now(), queue: Promise.resolve() };
      this.buckets.set(vendor, bucket);
    }
    const b = bucket;
    // Callers wait in order, each for its own tokens.
    b.queue = b.queue.then(async () => {
      for (;;) {
        const now = Date.now();
        b.tokens = Math.min(rate, b.tokens + ((now - b.at) * rate) / 1000);
        b.at = now;
        if (b.tokens >= Math.min(n, rate)) {
          b.tokens -= n;
          return;
        }
        await new Promise((r) => setTimeout(r, Math.ceil(((Math.min(n, rate) - b.tokens) * 1000) / rate)));
      }
    });
    return b.queue;
  }
}
