import { describe, expect, it } from 'vitest';
import { hashPassword, PasswordHashError, randomPassword, verifyPassword } from './passwords.js';

describe('operator passwords', () => {
  it('hashes with scrypt, a new salt each time, the parameters stored beside it', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('correct horse');
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterY', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
  });

  it('verifies a hash made with other parameters (so they can be raised later)', async () => {
    const cheap = 'scrypt$1024$8$1$c2FsdHNhbHRzYWx0c2FsdA$' + 'x'.repeat(43);
    expect(await verifyPassword('anything', cheap)).toBe(false);
  });

  it('refuses a stored hash of another form instead of passing it', async () => {
    await expect(verifyPassword('x', 'plain-text-password')).rejects.toBeInstanceOf(PasswordHashError);
  });

  it('makes random passwords of 120 bits', () => {
    expect(randomPassword()).toMatch(/^[A-Za-z0-9_-]{20}$/);
    expect(randomPassword()).not.toBe(randomPassword());
  });
});
