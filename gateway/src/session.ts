import type { Device } from './devices.js';

/** Per-socket state, kept in uWS user data. */
export interface Session {
  readonly ip: string;
  /** Identifies this connection among the device's connections, across gateways. */
  readonly connection: string;
  /** When it authenticated (ms since the epoch): the newest connection of a device wins. */
  authenticatedAt: number;
  state: 'new' | 'authenticating' | 'ready' | 'closed';
  authTimer: NodeJS.Timeout | undefined;
  /** Closes a connection authenticated with a connect token once the token (and its grace) has run out. */
  tokenTimer?: NodeJS.Timeout;
  /** The `iat` (s) of the connect token it authenticated with: such a connection outlives a revocation older than it. */
  tokenIssuedAt?: number;
  device: Device | undefined;
  /** The subjects this socket added interest in, to remove on close. */
  subjects: string[];
  /** Frame-rate token bucket. */
  tokens: number;
  refilledAt: number;
  /** The socket's async frame work, chained so that its frames take effect in order. */
  work?: Promise<void>;
}
