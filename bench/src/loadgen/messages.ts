/** What the bench and its load-client processes say to each other over the fork IPC channel. */

export interface ClientConfig {
  host: string;
  port: number;
  path: string;
  app: string;
  /** Devices [firstDevice, firstDevice + devices) of the run's seed are this client's. */
  seed: string;
  firstDevice: number;
  devices: number;
  /** Handshakes (connect, upgrade, auth) under way at once, at most. */
  maxInFlight: number;
  /** Sockets per source address (127.x.y.z), so that no address runs short of ephemeral ports. */
  socketsPerAddress: number;
  handshakeTimeoutMs: number;
  /** Tries per device before it counts as failed (a real SDK retries with backoff too). */
  maxAttempts: number;
}

export type ToClient =
  /** Hold this many of your devices' sockets (cumulative). */
  | { type: 'target'; connections: number }
  /** Open no more sockets: the machine is short of memory or time. */
  | { type: 'stop' };

export interface ClientStatus {
  /** Sockets that got READY and are still open. */
  held: number;
  /** Handshakes completed since the start (READY received). */
  handshakes: number;
  inFlight: number;
  /** Devices given up after maxAttempts. */
  failed: number;
  retries: number;
  /** Sockets closed after READY. */
  dropped: number;
  /** Frames received after READY other than pings (none are expected). */
  messages: number;
  /** The largest target reached: every device below it is held or failed. */
  reached: number;
  stopped: boolean;
  /** Why handshakes failed or held sockets closed, with counts. */
  reasons: Record<string, number>;
}

/** A client's status before it has done anything. */
export function newClientStatus(): ClientStatus {
  return { held: 0, handshakes: 0, inFlight: 0, failed: 0, retries: 0, dropped: 0, messages: 0, reached: 0, stopped: false, reasons: {} };
}

export type FromClient = { type: 'ready' } | ({ type: 'status' } & ClientStatus);
