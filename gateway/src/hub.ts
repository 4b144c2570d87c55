/**
 * Local interest in NATS subjects: the first socket interested in a subject subscribes the node,
 * the last one to leave unsubscribes it. Each NATS message is handed once to the local sockets.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';

/** Hands one NATS message to the local sockets interested in its subject. */
export interface Deliverer<S> {
  (subject: string, sockets: ReadonlySet<S>, msg: Msg): void;
}

export class Hub<S> {
  private readonly interest = new Map<string, { sockets: Set<S>; subscription: Subscription }>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly deliver: Deliverer<S>,
    private readonly onError: (subject: string, error: Error) => void,
  ) {}

  add(subject: string, socket: S): void {
    const entry = this.interest.get(subject);
    if (entry) {
      entry.sockets.add(socket);
      return;
    }
    const sockets = new Set([socket]);
    const subscription = this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) return this.onError(subject, error);
        this.deliver(subject, sockets, msg);
      },
    });
    this.interest.set(subject, { sockets, subscription });
  }

  remove(subject: string, socket: S): void {
    const entry = this.interest.get(subject);
    if (!entry || !entry.sockets.delete(socket)) return;
    if (entry.sockets.size === 0) {
      entry.subscription.unsubscribe();
      this.interest.delete(subject);
    }
  }

  /** Resolves when the server has registered every subscription made so far. */
  async flush(): Promise<void> {
    await this.nc.flush();
  }

  get subjectCount(): number {
    return this.interest.size;
  }
}
