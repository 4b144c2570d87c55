import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { DeviceClient, MemoryCredentialStore } from '@mps/sdk';
import { backoffCeiling, fullJitterDelay, SDK_BACKOFF, type Backoff } from './backoff.js';

/** A loopback port nobody listens on: every connection attempt is refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

afterEach(() => vi.restoreAllMocks());

describe('fullJitterDelay', () => {
  it('is uniform below min(max, initial × 2^attempt)', () => {
    expect([0, 1, 2, 5, 6, 10].map((a) => backoffCeiling(a, SDK_BACKOFF))).toEqual([500, 1000, 2000, 16_000, 30_000, 30_000]);
    expect(fullJitterDelay(3, SDK_BACKOFF, () => 0.25)).toBe(1000);
    expect(fullJitterDelay(0, SDK_BACKOFF, () => 0)).toBe(0);
  });

  it("waits between the SDK's own attempts exactly what it computes", async () => {
    // The real DeviceClient against a refused port: the gaps between its attempts are its delays.
    const backoff: Backoff = { initialMs: 40, maxMs: 400, stableMs: 5000 };
    const attempts: number[] = [];
    class Recording extends WebSocket {
      constructor(url: string) {
        attempts.push(performance.now());
        super(url);
      }
    }
    vi.spyOn(Math, 'random').mockReturnValue(0.75);
    const client = new DeviceClient({
      url: `ws://127.0.0.1:${await closedPort()}/v1/device`,
      app: 'app_backoff',
      platform: 'android',
      credentials: new MemoryCredentialStore({ device: '00000000-0000-4000-8000-000000000000', secret: 'x' }),
      reconnect: { initialMs: backoff.initialMs, maxMs: backoff.maxMs },
      WebSocket: Recording as never,
    });
    client.on('error', () => undefined);
    void client.connect().catch(() => undefined);
    await vi.waitUntil(() => attempts.length >= 8, { timeout: 5000, interval: 10 });
    client.close();
    const gaps = attempts.slice(1, 8).map((at, k) => at - attempts[k]!);
    gaps.forEach((gap, k) => {
      const expected = fullJitterDelay(k, backoff, () => 0.75);
      // Late by the refused connect and the timer, never early.
      expect(gap).toBeGreaterThanOrEqual(expected - 1);
      expect(gap).toBeLessThan(expected + 40);
    });
  });
});
