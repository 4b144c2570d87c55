import { describe, expect, it } from 'vitest';
import { decodeEvent, decodeEvents, encodeEvent, encodeEvents, EventDecodeError, type TrackingEvent } from './events.js';

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

describe('messages of several events', () => {
  const second: TrackingEvent = { ...event, id: `${event.id}-2`, device: '0190a6f2-1111-7c4e-9f3a-1c2d3e4f5a6b' };
  const textOf = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

  it('encodes one JSON object a line, and one event exactly as a message of its own', () => {
    expect(textOf(encodeEvents([event, second]))).toBe(`${JSON.stringify(event)}\n${JSON.stringify(second)}`);
    expect(encodeEvents([event])).toEqual(encodeEvent(event));
  });

  it('decodes several events, and a message of one event as before', () => {
    expect(decodeEvents(encodeEvents([event, second]))).toEqual({ events: [event, second], malformed: [], lines: true });
    expect(decodeEvents(encodeEvent(event))).toEqual({ events: [event], malformed: [], lines: true });
  });

  it('keeps the valid events of a message with malformed lines, and says why each other line was refused', () => {
    const text = [JSON.stringify(event), 'not json', JSON.stringify({ ...event, kind: 'clicked' }), '', JSON.stringify(second)].join('\n');
    const decoded = decodeEvents(bytesOf(text));
    expect(decoded.events).toEqual([event, second]);
    expect(decoded.malformed.map((e) => e.message)).toEqual(['tracking event is not JSON', 'tracking event does not match its schema']);
    expect(decoded.lines).toBe(false);
  });

  it('reads a single event spread over several lines, and a trailing newline, without passing the bytes on as lines', () => {
    expect(decodeEvents(bytesOf(JSON.stringify(event, null, 2)))).toEqual({ events: [event], malformed: [], lines: false });
    expect(decodeEvents(bytesOf(`${JSON.stringify(event)}\n${JSON.stringify(second)}\n`))).toEqual({ events: [event, second], malformed: [], lines: false });
  });

  it('refuses a JSON array, which is not the format, as a whole', () => {
    const decoded = decodeEvents(bytesOf(JSON.stringify([event, second])));
    expect(decoded.events).toEqual([]);
    expect(decoded.malformed.map((e) => e.message)).toEqual(['tracking event does not match its schema']);
  });

  it('decodeEvent takes exactly one event', () => {
    expect(() => decodeEvent(encodeEvents([event, second]))).toThrow('expected one tracking event, the message holds 2');
  });
});
