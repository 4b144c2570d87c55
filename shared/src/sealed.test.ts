import { describe, expect, it } from 'vitest';
import { MasterKey } from './sealed.js';

const keyText = Buffer.alloc(32, 0x5a).toString('base64');
const key = MasterKey.fromBase64(keyText);

describe('MasterKey', () => {
  it.each(['vendor credentials {"teamId":"ABC123"}', '', 'Olá, 世界 🔐', 'x'.repeat(10_000)])(
    'opens what it sealed: %#',
    (plaintext) => {
      const sealed = key.seal(plaintext);
      expect(sealed.length).toBe(12 + 16 + Buffer.byteLength(plaintext, 'utf8'));
      expect(key.open(sealed)).toBe(plaintext);
    },
  );

  it('opens with a key loaded again from the same base64', () => {
    expect(MasterKey.fromBase64(keyText).open(key.seal('again'))).toBe('again');
  });

  it('seals the same text differently each time', () => {
    const a = key.seal('same text');
    const b = key.seal('same text');
    expect(a.equals(b)).toBe(false);
    expect(a.subarray(0, 12).equals(b.subarray(0, 12))).toBe(false);
  });

  it('does not leave the plaintext visible in the sealed bytes', () => {
    expect(key.seal('plain-visible-marker').includes('plain-visible-marker')).toBe(false);
  });

  it('refuses to open when any byte (iv, tag or ciphertext) was changed', () => {
    const sealed = key.seal('do not touch');
    for (let i = 0; i < sealed.length; i++) {
      const tampered = Buffer.from(sealed);
      tampered[i] = tampered[i]! ^ 0x01;
      expect(() => key.open(tampered), `byte ${i}`).toThrow();
    }
  });

  it('refuses to open a truncated or extended seal', () => {
    const sealed = key.seal('do not touch');
    expect(() => key.open(sealed.subarray(0, sealed.length - 1))).toThrow();
    expect(() => key.open(Buffer.concat([sealed, Buffer.from([0])]))).toThrow();
    expect(() => key.open(Buffer.alloc(0))).toThrow();
  });

  it('refuses to open under another key', () => {
    const other = MasterKey.fromBase64(Buffer.alloc(32, 0x5b).toString('base64'));
    expect(() => other.open(key.seal('for the first key only'))).toThrow();
  });

  it.each([
    ['empty', ''],
    ['16 bytes', Buffer.alloc(16, 1).toString('base64')],
    ['31 bytes', Buffer.alloc(31, 1).toString('base64')],
    ['33 bytes', Buffer.alloc(33, 1).toString('base64')],
    ['64 bytes', Buffer.alloc(64, 1).toString('base64')],
    ['not base64', 'this is not a base64 master key'],
  ])('refuses a key that is not 32 bytes: %s', (_, value) => {
    expect(() => MasterKey.fromBase64(value)).toThrow('the master key must be 32 bytes, base64-encoded');
  });

  it('generates a 32-byte key, different each time', () => {
    const generated = MasterKey.generate();
    expect(Buffer.from(generated, 'base64').length).toBe(32);
    expect(MasterKey.generate()).not.toBe(generated);
    const fresh = MasterKey.fromBase64(generated);
    expect(fresh.open(fresh.seal('ok'))).toBe('ok');
  });

  it('never shows the key in JSON', () => {
    expect(JSON.stringify(key)).toBe('"[master key]"');
    const config = JSON.stringify({ port: 8080, masterKey: key });
    expect(config).toBe('{"port":8080,"masterKey":"[master key]"}');
    expect(config).not.toContain(keyText);
  });
});
