/** The loss test at a small size (bench/ runs it at 10,000 devices x 100 messages: loss.json). */
import { describe, expect, it } from 'vitest';
import { runLossTest } from './support/loss.js';

describe('loss test (small)', () => {
  it('shows every message due to a device exactly once, through random disconnects', async () => {
    const metrics = await runLossTest({ devices: 24, messagesPerDevice: 20, gateways: 2, disconnectsPerSecond: 20, settleMs: 30_000 });
    console.log(`loss test: ${JSON.stringify(metrics)}`);
    expect(metrics.expected).toBeGreaterThanOrEqual(24 * 20);
    expect(metrics.disconnects).toBeGreaterThan(0);
    expect(metrics).toMatchObject({ acked_once: metrics.expected, duplicates_shown: 0, expired_shown: 0, lost: 0, unexpected: 0 });
  }, 120_000);
});
