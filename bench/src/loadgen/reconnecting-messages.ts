/** What a driver and its reconnecting load-client processes (reconnecting-client.ts) say over IPC. */
import type { Backoff } from './backoff.js';
import type { ClientConfig } from './messages.js';

/**
 * A load client's configuration, with the SDK's backoff instead of a number of tries: `maxInFlight`
 * bounds the first connect only (reconnects keep their own schedule), and a handshake not READY
 * after `handshakeTimeoutMs` counts as a failed attempt.
 */
export interface ReconnectingConfig extends Omit<ClientConfig, 'maxAttempts'> {
  backoff: Backoff;
}

/** One device's record since the last mark: wall-clock ms (comparable between the processes of one machine). */
export interface DeviceEpisode {
  /** Its bench device index. */
  device: number;
  /** When it first lost its connection (or left it after a RECONNECT frame); null: it did not. */
  lost: number | null;
  /** When it last got READY; null: it did not. */
  ready: number | null;
  losses: number;
  /** When each connection attempt started. */
  attempts: number[];
  /** When each attempt that did not reach READY ended (its backoff delay starts there). */
  failures: number[];
  /**
   * When each attempt was due: the end of the failure before it plus the delay the backoff chose
   * (its start is later by how late the process ran its timer). Absent where not known (the SDK).
   */
  due?: number[];
  /** The delay (ms) the gateway's RECONNECT frame asked for, if one came (not known for the SDK). */
  reconnectAfter?: number | null;
}

export interface ReconnectingStatus {
  devices: number;
  /** READY and still open. */
  ready: number;
  connecting: number;
  /** Waiting out a backoff delay. */
  waiting: number;
  /** Given up after a close whose code says not to retry. */
  stopped: number;
  /** READY frames received since the start. */
  handshakes: number;
  /** Failed attempts and losses since the last mark, by reason. */
  reasons: Record<string, number>;
  /** The event loop's delay since the last mark (ms): how late recorded instants may be. */
  lagMs: { p99: number; max: number };
}

/** For each of the asked message ids, over this process's devices. */
export interface ReceivedCounts {
  /** Device × message pairs received once, never, more than once. */
  once: number;
  never: number;
  more: number;
  /** Messages received with another id. */
  other: number;
}

export type ReconnectingRequest =
  | { seq: number; op: 'connect' }
  | { seq: number; op: 'status' }
  /** Starts a new episode: forgets losses, attempts and READYs recorded so far. */
  | { seq: number; op: 'mark' }
  /** The devices that lost their connection or attempted one since the mark. */
  | { seq: number; op: 'episode' }
  | { seq: number; op: 'received'; ids: string[] }
  | { seq: number; op: 'stop' };

export type FromReconnecting = { type: 'ready' } | { type: 'reply'; seq: number; body: unknown };
