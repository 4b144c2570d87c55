import { describe, expect, it } from 'vitest';
import { createSubjects, userToken } from './subjects.js';

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;

describe('createSubjects', () => {
  const subjects = createSubjects('mps');

  it('spells every subject under the prefix', () => {
    expect(subjects.prefix).toBe('mps');
    expect(subjects.device('app_1', 'dev-1')).toBe('mps.dev.app_1.dev-1');
    expect(subjects.user('app_1', 'alice')).toBe('mps.usr.app_1.YWxpY2U');
    expect(subjects.broadcast('app_1')).toBe('mps.bc.app_1');
    expect(subjects.event('app_1', 'opened')).toBe('mps.ev.app_1.opened');
    expect(subjects.allEvents).toBe('mps.ev.>');
    expect(subjects.eventsOfKind('delivered')).toBe('mps.ev.*.delivered');
    expect(subjects.reportFunnel).toBe('mps.analytics.funnel');
  });

  it('accepts a device id that is a UUID', () => {
    expect(subjects.device('app_1', '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b')).toBe(
      'mps.dev.app_1.0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b',
    );
  });

  it.each([
    ['user.name@example.com', 'dXNlci5uYW1lQGV4YW1wbGUuY29t'],
    ['Ana Maria', 'QW5hIE1hcmlh'],
    ['*', 'Kg'],
    ['>', 'Pg'],
    ['a.b c*>', 'YS5iIGMqPg'],
    ['José', 'Sm9zw6k'],
  ])('turns the user id %j into the single safe token %j', (user, token) => {
    expect(userToken(user)).toBe(token);
    expect(token).toMatch(SAFE_TOKEN);
    const subject = subjects.user('app_1', user);
    expect(subject).toBe(`mps.usr.app_1.${token}`);
    expect(subject.split('.')).toHaveLength(4);
  });

  it('gives different user ids different tokens', () => {
    const users = ['a', 'A', 'a.b', 'a b', 'a_b', 'a-b', '*', '>', 'ab'];
    expect(new Set(users.map(userToken)).size).toBe(users.length);
  });

  const unsafe = ['', 'a.b', 'a b', '*', '>', 'a*', 'app>', 'José', 'x'.repeat(129)];

  it.each(unsafe)('refuses the app id %j', (app) => {
    const expected = `app "${app}" cannot be used in a NATS subject`;
    expect(() => subjects.device(app, 'dev-1')).toThrow(expected);
    expect(() => subjects.user(app, 'alice')).toThrow(expected);
    expect(() => subjects.broadcast(app)).toThrow(expected);
    expect(() => subjects.event(app, 'sent')).toThrow(expected);
  });

  it.each(unsafe)('refuses the device id %j', (device) => {
    expect(() => subjects.device('app_1', device)).toThrow(`device "${device}" cannot be used in a NATS subject`);
  });

  it.each([...unsafe, 'a-b', 'a_b', 'MPS', '7up', 'x'.repeat(33)])('refuses the prefix %j', (prefix) => {
    expect(() => createSubjects(prefix)).toThrow(`prefix "${prefix}" must be a lower-case letter`);
  });

  it('refuses an empty user id', () => {
    expect(() => subjects.user('app_1', '')).toThrow('empty user id');
  });

  it('accepts ids of up to 128 characters', () => {
    const id = 'x'.repeat(128);
    expect(subjects.device(id, id)).toBe(`mps.dev.${id}.${id}`);
  });

  it.each([
    ['mps', 'MPS_EVENTS', 'MPS_NONCES'],
    ['trun7', 'TRUN7_EVENTS', 'TRUN7_NONCES'],
  ])('derives stream and bucket names from the prefix %j', (prefix, stream, bucket) => {
    const named = createSubjects(prefix);
    expect(named.eventStream).toBe(stream);
    expect(named.nonceBucket).toBe(bucket);
  });
});
