import { describe, expect, it } from 'vitest';
import { packBatch, unpackBatch } from './batch.js';

describe('publisher batches', () => {
  it('carry each frame whole and in order', () => {
    const frames = [Buffer.from('one'), Buffer.alloc(0), Buffer.alloc(70_000, 7), new Uint8Array([1, 2, 3]).subarray(1)];
    const out: Buffer[] = [];
    unpackBatch(packBatch(frames), (frame) => out.push(Buffer.from(frame)));
    expect(out).toEqual(frames.map((f) => Buffer.from(f)));
  });
});
