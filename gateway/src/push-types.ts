import { decodeServerFrame, FrameType, ProtocolError, type PushType } from '@mps/shared';

/**
 * The push type of messages this node sent recently, so that acks and reports (which carry only
 * the message id) become events with their push type. Bounded: the oldest entries go first.
 */
export class PushTypes {
  private readonly types = new Map<string, PushType>();

  constructor(private readonly capacity: number) {}

  remember(id: string, type: PushType): void {
    if (this.types.has(id)) return;
    this.types.set(id, type);
    if (this.types.size > this.capacity) this.types.delete(this.types.keys().next().value as string);
  }

  /** Reads id and type from an encoded frame (once per NATS message, not per socket). */
  rememberFrame(frame: Uint8Array): void {
    try {
      const decoded = decodeServerFrame(frame);
      if (decoded.t === FrameType.MESSAGE) this.remember(decoded.id, decoded.type);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
    }
  }

  of(id: string): PushType | '' {
    return this.types.get(id) ?? '';
  }
}
