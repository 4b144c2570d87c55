import { describe, expect, it } from 'vitest';
import { parseRateLimits, RateLimitsError, VendorRates } from './rate.js';

describe('vendor rates', () => {
  it('parses vendor=rate lists and refuses anything else', () => {
    expect(parseRateLimits('')).toEqual({});
    expect(parseRateLimits('apns=2000, fcm=500')).toEqual({ apns: 2000, fcm: 500 });
    for (const bad of ['sms=10', 'apns=0', 'apns=1.5', 'apns', 'fcm=-3']) expect(() => parseRateLimits(bad)).toThrow(RateLimitsError);
  });

  it('lets a burst of one second through, then holds sends to the rate', async () => {
    const rates = new VendorRates({ fcm: 100 });
    const started = Date.now();
    await rates.take('fcm', 100);
    const burst = Date.now() - started;
    await rates.take('fcm', 50);
    const held = Date.now() - started;
    expect(burst).toBeLessThan(400);
    // 50 more at 100/s need about half a second.
    expect(held).toBeGreaterThanOrEqual(450);
    await rates.take('apns', 10_000); // not limited
  });
});
