import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, EventDecodeError, type TrackingEvent } from './events.js';

const event: TrackingEvent = {
  id: '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b:delivered',
  kind: 'delivered',
  app: 'app_1',
  message: '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b',
  device: '0190a6f2-0000-7c4e-9f3a-1c2d3e4f5a6b',
  channel: 'socket',
  platform: 'android',
  osVersion: '14',
  appVersion: '2.3.0',
  sdkVersion: '0.1.0',
  pushType: 'notification',
  at: 1_700_000_000_123,
};

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);

function decodeErrorOf(bytes: Uint8Array): EventDecodeError {
  try {
    decodeEvent(bytes);
  } catch (error) {
    if (error instanceof EventDecodeError) return error;
    throw error;
  }
  throw new Error('expected an EventDecodeError, but decoding succeeded');
}

describe('encodeEvent / decodeEvent', () => {
  it('round-trips an event', () => {
    expect(decodeEvent(encodeEvent(event))).toEqual(event);
  });

  it('encodes as UTF-8 JSON', () => {
    const withAccents = { ...event, appVersion: 'versão 2 🚀' };
    expect(JSON.parse(new TextDecoder().decode(encodeEvent(withAccents)))).toEqual(withAccents);
  });

  it.each(['not json', '{"id":', '', '\u00ff\u00fe'])('refuses %j as not JSON, keeping the cause', (text) => {
    const error = decodeErrorOf(bytesOf(text));
    expect(error.name).toBe('EventDecodeError');
    expect(error.message).toBe('tracking event is not JSON');
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  const { at: _at, ...withoutAt } = event;
  const mismatches: Array<[string, unknown]> = [
    ['null', null],
    ['an array', [event]],
    ['a number', 42],
    ['a missing field', withoutAt],
    ["kind 'clicked'", { ...event, kind: 'clicked' }],
    ["channel 'sms'", { ...event, channel: 'sms' }],
    ['a fractional at', { ...event, at: 1.5 }],
    ['at as a string', { ...event, at: '1700000000123' }],
    ['a numeric device', { ...event, device: 7 }],
  ];

  it.each(mismatches)('refuses %s as a schema mismatch', (_, value) => {
    const error = decodeErrorOf(bytesOf(JSON.stringify(value)));
    expect(error.message).toBe('tracking event does not match its schema');
  });
});
