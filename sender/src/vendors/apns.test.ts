import { describe, expect, it } from 'vitest';
import { apnsResultOf } from './apns.js';

const gone = (timestamp: unknown) => apnsResultOf({ device: 'ab', status: 410, response: { reason: 'Unregistered', timestamp: timestamp as string } });

describe('APNs answers', () => {
  it('reads a 410 timestamp as ms (as Apple documents it), or as seconds when it can only be seconds', () => {
    const at = Date.UTC(2026, 0, 2, 3, 4, 5);
    expect(gone(at)).toEqual({ status: 'invalid-token', reason: 'Unregistered', since: new Date(at) });
    expect(gone(at / 1000)).toEqual({ status: 'invalid-token', reason: 'Unregistered', since: new Date(at) });
    expect(gone(String(at))).toMatchObject({ since: new Date(at) });
    for (const none of [undefined, null, 'soon', 0, -5]) expect(gone(none)).toEqual({ status: 'invalid-token', reason: 'Unregistered' });
  });

  it('retries 429 and 5xx and transport errors, fails other refusals', () => {
    expect(apnsResultOf({ device: 'ab', status: 429, response: { reason: 'TooManyRequests' } }).status).toBe('retry');
    expect(apnsResultOf({ device: 'ab', status: 503, response: { reason: 'ServiceUnavailable' } }).status).toBe('retry');
    expect(apnsResultOf({ device: 'ab', error: new Error('Stream closed with error code NGHTTP2_REFUSED_STREAM') }).status).toBe('retry');
    expect(apnsResultOf({ device: 'ab', status: 413, response: { reason: 'PayloadTooLarge' } }).status).toBe('failed');
    expect(apnsResultOf({ device: 'ab', status: 403, response: { reason: 'Forbidden' } }).status).toBe('failed');
  });
});
