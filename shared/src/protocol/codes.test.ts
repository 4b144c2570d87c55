import { describe, expect, it } from 'vitest';
import { closeInfo, CloseCode } from './codes.js';

describe('CloseCode', () => {
  const all = Object.values(CloseCode);

  it('gives every close a distinct number in the application range 4000-4999', () => {
    const numbers = all.map((c) => c.code);
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const code of numbers) {
      expect(code).toBeGreaterThanOrEqual(4000);
      expect(code).toBeLessThanOrEqual(4999);
    }
  });

  it('gives every close a distinct reason', () => {
    const reasons = all.map((c) => c.reason);
    expect(new Set(reasons).size).toBe(reasons.length);
  });

  it('keeps the numbers clients already depend on', () => {
    expect(CloseCode.BAD_FRAME.code).toBe(4000);
    expect(CloseCode.UNKNOWN_FRAME.code).toBe(4001);
    expect(CloseCode.INVALID_FRAME.code).toBe(4002);
  });
});

describe('closeInfo', () => {
  it.each(Object.entries(CloseCode))('maps %s back from its number', (_, info) => {
    expect(closeInfo(info.code)).toBe(info);
  });

  it.each([1000, 1006, 3999, 4999, 5000, -1, 4000.5])('knows nothing of %d', (code) => {
    expect(closeInfo(code)).toBeUndefined();
  });
});
