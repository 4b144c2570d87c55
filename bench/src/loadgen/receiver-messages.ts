/** What the fan-out benches and their receiver processes (receiver-client.ts) say to each other over IPC. */
import type { Endpoint } from './protocols.js';

export interface ReceiverConfig extends Endpoint {
  /** Sockets [firstDevice, firstDevice + devices) of the run are this process's (mps: bench device indexes). */
  firstDevice: number;
  devices: number;
  maxInFlight: number;
  socketsPerAddress: number;
  handshakeTimeoutMs: number;
  maxAttempts: number;
  /** mps only: find the latency stamp (stamp.ts) in each message and report it. */
  stamps: boolean;
}

export type ToReceiver =
  /** Hold this many of your sockets (cumulative). */
  | { type: 'target'; connections: number }
  /** Open no more sockets. */
  | { type: 'stop' }
  /** Send your status now. */
  | { type: 'report' };

export interface ReceiverStatus {
  held: number;
  handshakes: number;
  inFlight: number;
  failed: number;
  retries: number;
  dropped: number;
  reached: number;
  stopped: boolean;
  reasons: Record<string, number>;
  /** Messages received on held sockets since the start (frames, NATS MSGs or MQTT PUBLISHes). */
  messages: number;
  /** Wall-clock ms (sub-ms precision) at which the last message arrived; 0 before any. */
  lastMessageAt: number;
  /** Wall-clock ms of this status. */
  at: number;
}

export type FromReceiver =
  | { type: 'ready' }
  | ({ type: 'status' } & ReceiverStatus)
  /** Flat pairs: sequence number, latency in ms (receipt minus the intended send time in the stamp). */
  | { type: 'stamps'; samples: number[] };

export function newReceiverStatus(): ReceiverStatus {
  return {
    held: 0,
    handshakes: 0,
    inFlight: 0,
    failed: 0,
    retries: 0,
    dropped: 0,
    reached: 0,
    stopped: false,
    reasons: {},
    messages: 0,
    lastMessageAt: 0,
    at: 0,
  };
}
