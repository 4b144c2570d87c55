/**
 * Local interest in NATS subjects: the first socket interested in a subject subscribes the node,
 * the last one to leave unsubscribes it. Each NATS message is handed once to the local sockets.
 *
 * A gateway holds one subscription per connected device. nats.js's own (an async iterator with
 * three deferred promises and their closures) costs about 1.4 KB of heap each, more than the rest
 * of a connection; so an interest is itself the subscription nats.js's protocol handler dispatches
 * to, through the handler's subscribe / unsubscribe (@nats-io/nats-core 3.4, pinned; decision 24).
 * Everything else (reconnects and their re-subscriptions, flush, drain) is nats.js's.
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';

/** Hands one NATS message to the local sockets interested in its subject. */
export interface Deliverer<S> {
  (subject: string, sockets: ReadonlySet<S>, msg: Msg): void;
}

/** What nats.js's protocol handler does with a subscription. */
interface Protocol {
  subscribe(subscription: object): void;
  unsubscribe(subscription: object): void;
}

/** A subject's local sockets, and the subscription nats.js dispatches its messages to. */
class Interest<S extends object> {
  /** Set by nats.js when it subscribes (and again on each reconnection). */
  sid = 0;
  /** Counted by nats.js. */
  received = 0;

  constructor(
    readonly subject: string,
    /** Most subjects (a device's own) have one socket: a set only once there are more. */
    public sockets: S | Set<S>,
    private readonly hub: Hub<S>,
  ) {}

  /** Called by nats.js for each message, or with the error that ended the subscription. */
  callback(error: Error | null, msg: Msg): void {
    this.hub.dispatch(this, error, msg);
  }

  /** nats.js closes its subscriptions when the connection closes: nothing to free here. */
  close(): void {}

  /** Draining the connection (on shutdown) ends the subscription. */
  async drain(): Promise<void> {
    this.hub.end(this);
  }
}

export class Hub<S extends object> {
  private readonly interest = new Map<string, Interest<S>>();
  private readonly protocol: Protocol;

  constructor(
    private readonly nc: NatsConnection,
    private readonly deliver: Deliverer<S>,
    private readonly onError: (subject: string, error: Error) => void,
  ) {
    const protocol = (nc as unknown as { protocol?: Partial<Protocol> }).protocol;
    if (typeof protocol?.subscribe !== 'function' || typeof protocol.unsubscribe !== 'function') {
      throw new Error('the NATS connection has no protocol handler to subscribe with: was @nats-io/nats-core upgraded?');
    }
    this.protocol = protocol as Protocol;
  }

  add(subject: string, socket: S): void {
    const entry = this.interest.get(subject);
    if (!entry) {
      const created = new Interest(subject, socket, this);
      this.interest.set(subject, created);
      this.protocol.subscribe(created);
    } else if (entry.sockets instanceof Set) {
      entry.sockets.add(socket);
    } else if (entry.sockets !== socket) {
      entry.sockets = new Set([entry.sockets, socket]);
    }
  }

  remove(subject: string, socket: S): void {
    const entry = this.interest.get(subject);
    if (!entry) return;
    if (entry.sockets instanceof Set) {
      if (!entry.sockets.delete(socket) || entry.sockets.size > 0) return;
    } else if (entry.sockets !== socket) {
      return;
    }
    this.end(entry);
  }

  /** Resolves when the server has registered every subscription made so far. */
  async flush(): Promise<void> {
    await this.nc.flush();
  }

  get subjectCount(): number {
    return this.interest.size;
  }

  /** @internal for Interest */
  dispatch(entry: Interest<S>, error: Error | null, msg: Msg): void {
    if (error) return this.onError(entry.subject, error);
    this.deliver(entry.subject, entry.sockets instanceof Set ? entry.sockets : new Set([entry.sockets]), msg);
  }

  /** @internal for Interest */
  end(entry: Interest<S>): void {
    if (this.interest.get(entry.subject) === entry) this.interest.delete(entry.subject);
    this.protocol.unsubscribe(entry);
  }
}
