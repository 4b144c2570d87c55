import { describe, expect, it } from 'vitest';
import { RecentIds } from './dedup.js';

describe('RecentIds', () => {
  it('accepts an id the first time and refuses it after', () => {
    const recent = new RecentIds(10);
    expect(recent.add('m1')).toBe(true);
    expect(recent.add('m1')).toBe(false);
    expect(recent.add('m2')).toBe(true);
    expect(recent.add('m1')).toBe(false);
    expect(recent.size).toBe(2);
  });

  it('never holds more than its capacity', () => {
    const recent = new RecentIds(3);
    for (let i = 0; i < 100; i++) expect(recent.add(`m${i}`)).toBe(true);
    expect(recent.size).toBe(3);
  });

  it('evicts the oldest id first', () => {
    const recent = new RecentIds(3);
    for (const id of ['a', 'b', 'c', 'd']) recent.add(id);
    // 'a' was evicted by 'd'; the newer three are still remembered.
    expect(recent.add('b')).toBe(false);
    expect(recent.add('c')).toBe(false);
    expect(recent.add('d')).toBe(false);
    expect(recent.add('a')).toBe(true); // evicts 'b'
    expect(recent.add('c')).toBe(false);
    expect(recent.add('b')).toBe(true); // evicts 'c'
    expect(recent.add('d')).toBe(false);
    expect(recent.add('c')).toBe(true);
    expect(recent.size).toBe(3);
  });
});
