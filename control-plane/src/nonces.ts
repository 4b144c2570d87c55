/**
 * Replay protection shared by every control-plane process: a nonce is claimed with a KV `create`,
 * which fails if the key exists. Entries outlive the clock-skew window on both sides.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { CLOCK_SKEW_MS, type NatsConnection, type Subjects } from '@mps/shared';

export class NonceGuard {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, subjects: Subjects): Promise<NonceGuard> {
    const kv = await new Kvm(nc).create(subjects.nonceBucket, { ttl: 2 * CLOCK_SKEW_MS, history: 1 });
    return new NonceGuard(kv);
  }

  /** True when the nonce was unused for this key; false when it is a replay. */
  async claim(keyId: string, nonce: string): Promise<boolean> {
    try {
      await this.kv.create(`${keyId}.${nonce}`, new Uint8Array(0));
      return true;
    } catch (error) {
      if (error instanceof Error && /wrong last sequence|key exists/i.test(error.message)) return false;
      throw error;
    }
  }
}
