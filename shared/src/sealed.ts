/**
 * Secrets at rest (API key secrets, vendor credentials) are sealed with AES-256-GCM under the
 * deployment's master key: iv (12 bytes) | tag (16 bytes) | ciphertext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export class MasterKey {
  private constructor(private readonly key: Buffer) {}

  static fromBase64(value: string): MasterKey {
    const key = Buffer.from(value, 'base64');
    if (key.length !== 32) throw new Error('the master key must be 32 bytes, base64-encoded');
    return new MasterKey(key);
  }

  static generate(): string {
    return randomBytes(32).toString('base64');
  }

  seal(plaintext: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]);
  }

  open(sealed: Buffer): string {
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(0, 12), { authTagLength: 16 });
    decipher.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8');
  }

  /** Never print the key, even by accident. */
  toJSON(): string {
    return '[master key]';
  }
}
