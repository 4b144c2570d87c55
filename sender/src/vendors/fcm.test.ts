import { describe, expect, it } from 'vitest';
import { fcmResultOf } from './fcm.js';

const withRetryAfter = (code: string, retryAfter?: string) => ({
  code,
  message: 'refused',
  httpResponse: { headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter } },
});

describe('FCM answers', () => {
  it('waits at least Retry-After, and at least a minute on a quota error', () => {
    expect(fcmResultOf(withRetryAfter('messaging/server-unavailable', '90'))).toMatchObject({ status: 'retry', retryAfterMs: 90_000 });
    expect(fcmResultOf(withRetryAfter('messaging/server-unavailable'))).not.toHaveProperty('retryAfterMs');
    expect(fcmResultOf(withRetryAfter('messaging/message-rate-exceeded', '5'))).toMatchObject({ status: 'retry', retryAfterMs: 60_000 });
    expect(fcmResultOf(withRetryAfter('messaging/message-rate-exceeded', '75'))).toMatchObject({ status: 'retry', retryAfterMs: 75_000 });
  });

  it('fails the other refusals without retrying them', () => {
    expect(fcmResultOf(withRetryAfter('messaging/invalid-argument'))).toMatchObject({ status: 'failed' });
    expect(fcmResultOf(withRetryAfter('messaging/third-party-auth-error', '10'))).toMatchObject({ status: 'failed' });
    expect(fcmResultOf(withRetryAfter('messaging/registration-token-not-registered'))).toMatchObject({ status: 'invalid-token' });
  });
});
