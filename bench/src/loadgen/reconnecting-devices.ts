/**
 * Bench devices that behave like the SDK when their gateway goes away, leaner than it: one node:net
 * socket each with the minimal WebSocket of wire.ts, tens of thousands per process. A device answers
 * pings, acks what it receives, follows a RECONNECT frame (leaves after its delay and connects again
 * at once), and after a lost connection comes back with the SDK's full-jitter backoff (backoff.ts;
 * docs/protocol.md section 13). Every attempt, loss and READY is recorded with its wall-clock instant,
 * so a test can see how a crowd came back. Only the first connect is paced (`maxInFlight`):
 * reconnects follow each device's own schedule, as real devices' do.
 */
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { closeInfo, decodeServerFrame, encodeFrame, FrameType, PROTOCOL_VERSION, ProtocolError } from '@mps/shared/protocol';
import { fullJitterDelay } from './backoff.js';
import { sourceAddress } from './device-sockets.js';
import { deviceId, deviceSecret } from './identity.js';
import type { DeviceEpisode, ReceivedCounts, ReconnectingConfig, ReconnectingStatus } from './reconnecting-messages.js';
import { wallClockMs } from './stamp.js';
import { clientFrame, closeCode, Opcode, readFrames, readUpgradeResponse, upgradeRequest, WireError, type Upgrade } from './wire.js';

const EMPTY = Buffer.alloc(0);
const NORMAL_CLOSE = Buffer.from([0x03, 0xe8]);

const Phase = { IDLE: 0, CONNECTING: 1, READY: 2, WAITING: 3, STOPPED: 4 } as const;

function push(lists: Map<number, number[]>, i: number, at: number): void {
  const list = lists.get(i);
  if (list) list.push(at);
  else lists.set(i, [at]);
}

export class ReconnectingDevices {
  private readonly upgrade: Upgrade;
  private readonly sockets: (Socket | undefined)[];
  private readonly timers: (NodeJS.Timeout | undefined)[];
  private readonly phase: Uint8Array;
  private readonly attempt: Uint8Array;
  /** When the current connection got READY (for the backoff reset). */
  private readonly readyAt: Float64Array;
  /** When the attempt being waited for is due (NaN: none is, the next one opens at once). */
  private readonly dueAt: Float64Array;
  // The episode since the last mark.
  private readonly lost: Float64Array;
  private readonly readyInEpisode: Float64Array;
  private readonly losses: Uint16Array;
  /** The delay the last RECONNECT frame asked for (NaN: none came). */
  private readonly reconnectAfter: Float64Array;
  /** Each device's AUTH frame, encoded once: a storm re-sends them all. */
  private readonly authFrames: (Uint8Array | undefined)[];
  private attempts = new Map<number, number[]>();
  private failures = new Map<number, number[]>();
  private due = new Map<number, number[]>();
  private reasons: Record<string, number> = {};
  /** Per device that received anything: message id → times received. */
  private readonly received = new Map<number, Map<string, number>>();
  private handshakes = 0;
  private pacedNext = 0;
  private pacedInFlight = 0;
  private stopped = false;
  /** How late this process ran its callbacks since the last mark: late timers skew the recorded instants. */
  private readonly lag = monitorEventLoopDelay({ resolution: 10 });

  constructor(private readonly config: ReconnectingConfig) {
    const n = config.devices;
    this.upgrade = upgradeRequest(config.host, config.port, config.path);
    this.sockets = new Array<Socket | undefined>(n);
    this.timers = new Array<NodeJS.Timeout | undefined>(n);
    this.phase = new Uint8Array(n);
    this.attempt = new Uint8Array(n);
    this.readyAt = new Float64Array(n).fill(NaN);
    this.dueAt = new Float64Array(n).fill(NaN);
    this.lost = new Float64Array(n).fill(NaN);
    this.readyInEpisode = new Float64Array(n).fill(NaN);
    this.losses = new Uint16Array(n);
    this.reconnectAfter = new Float64Array(n).fill(NaN);
    this.authFrames = new Array<Uint8Array | undefined>(n);
    this.lag.enable();
  }

  /** Connects every device, `maxInFlight` handshakes at a time. */
  connect(): void {
    this.pace();
  }

  status(): ReconnectingStatus {
    const count = (phase: number) => this.phase.reduce((sum, p) => sum + (p === phase ? 1 : 0), 0);
    return {
      devices: this.config.devices,
      ready: count(Phase.READY),
      connecting: count(Phase.CONNECTING) + count(Phase.IDLE),
      waiting: count(Phase.WAITING),
      stopped: count(Phase.STOPPED),
      handshakes: this.handshakes,
      reasons: { ...this.reasons },
      lagMs: { p99: this.lag.percentile(99) / 1e6, max: this.lag.max / 1e6 },
    };
  }

  mark(): void {
    this.lost.fill(NaN);
    this.readyInEpisode.fill(NaN);
    this.losses.fill(0);
    this.reconnectAfter.fill(NaN);
    this.attempts = new Map();
    this.failures = new Map();
    this.due = new Map();
    this.reasons = {};
    this.lag.reset();
  }

  episode(): DeviceEpisode[] {
    const episodes: DeviceEpisode[] = [];
    for (let i = 0; i < this.config.devices; i++) {
      const attempts = this.attempts.get(i) ?? [];
      if (this.losses[i] === 0 && attempts.length === 0) continue;
      const lost = this.lost[i]!;
      const ready = this.readyInEpisode[i]!;
      const after = this.reconnectAfter[i]!;
      episodes.push({
        device: this.config.firstDevice + i,
        lost: Number.isNaN(lost) ? null : lost,
        ready: Number.isNaN(ready) ? null : ready,
        losses: this.losses[i]!,
        attempts,
        failures: this.failures.get(i) ?? [],
        due: this.due.get(i) ?? [],
        reconnectAfter: Number.isNaN(after) ? null : after,
      });
    }
    return episodes;
  }

  receivedCounts(ids: string[]): ReceivedCounts {
    const counts: ReceivedCounts = { once: 0, never: 0, more: 0, other: 0 };
    const wanted = new Set(ids);
    for (let i = 0; i < this.config.devices; i++) {
      const got = this.received.get(i);
      for (const id of ids) {
        const n = got?.get(id) ?? 0;
        if (n === 0) counts.never++;
        else if (n === 1) counts.once++;
        else counts.more++;
      }
      for (const [id, n] of got ?? []) if (!wanted.has(id)) counts.other += n;
    }
    return counts;
  }

  stop(): void {
    this.stopped = true;
    for (let i = 0; i < this.config.devices; i++) {
      clearTimeout(this.timers[i]);
      this.sockets[i]?.destroy();
      this.phase[i] = Phase.STOPPED;
    }
  }

  private count(reason: string): void {
    this.reasons[reason] = (this.reasons[reason] ?? 0) + 1;
  }

  private pace(): void {
    while (!this.stopped && this.pacedInFlight < this.config.maxInFlight && this.pacedNext < this.config.devices) {
      this.pacedInFlight++;
      this.open(this.pacedNext++, true);
    }
  }

  private open(i: number, paced: boolean): void {
    const { config } = this;
    const device = config.firstDevice + i;
    const started = wallClockMs();
    push(this.attempts, i, started);
    push(this.due, i, Number.isNaN(this.dueAt[i]) ? started : this.dueAt[i]!);
    this.dueAt[i] = NaN;
    this.phase[i] = Phase.CONNECTING;
    this.timers[i] = undefined;
    const socket = connect({ host: config.host, port: config.port, localAddress: sourceAddress(device, config.socketsPerAddress) });
    socket.setNoDelay(true);
    this.sockets[i] = socket;
    let buffered: Buffer = EMPTY;
    let upgraded = false;
    let ready = false;
    let code: number | undefined;
    let reason: string | undefined;
    const settlePaced = () => {
      if (!paced) return;
      paced = false;
      this.pacedInFlight--;
      this.pace();
    };
    const timeout = setTimeout(() => {
      reason = 'handshake timeout';
      socket.destroy();
    }, config.handshakeTimeoutMs);

    socket.on('connect', () => socket.write(this.upgrade.request));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      reason ??= error.code ?? error.message;
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      try {
        if (!upgraded) {
          const response = readUpgradeResponse(buffered, this.upgrade.accept);
          if (!response.complete) return;
          upgraded = true;
          buffered = response.rest;
          socket.write(clientFrame(Opcode.BINARY, (this.authFrames[i] ??= this.auth(device))));
        }
        const { frames, rest } = readFrames(buffered);
        buffered = rest.length === 0 ? EMPTY : Buffer.from(rest);
        for (const frame of frames) {
          if (frame.opcode === Opcode.PING) {
            socket.write(clientFrame(Opcode.PONG, frame.payload));
          } else if (frame.opcode === Opcode.CLOSE) {
            code = closeCode(frame.payload);
            socket.end(clientFrame(Opcode.CLOSE, NORMAL_CLOSE));
          } else if (frame.opcode === Opcode.BINARY) {
            const server = decodeServerFrame(frame.payload);
            if (server.t === FrameType.READY && !ready) {
              ready = true;
              clearTimeout(timeout);
              this.becameReady(i);
              settlePaced();
            } else if (server.t === FrameType.MESSAGE) {
              this.receive(i, server.id);
              socket.write(clientFrame(Opcode.BINARY, encodeFrame({ t: FrameType.ACK, ids: [server.id] })));
            } else if (server.t === FrameType.RECONNECT) {
              this.reconnectAfter[i] = server.after;
              this.timers[i] = setTimeout(() => this.leave(i, socket), server.after);
            }
          }
        }
      } catch (error) {
        if (!(error instanceof WireError || error instanceof ProtocolError)) throw error;
        reason = error.message;
        socket.destroy();
      }
    });
    socket.on('close', () => {
      clearTimeout(timeout);
      settlePaced();
      if (this.sockets[i] !== socket) return;
      this.sockets[i] = undefined;
      const why = code !== undefined ? `close ${code}` : (reason ?? (ready ? 'closed' : upgraded ? 'closed before ready' : 'closed before upgrade'));
      this.closed(i, ready, why, code);
    });
  }

  private auth(device: number): Uint8Array {
    return encodeFrame({
      t: FrameType.AUTH,
      v: PROTOCOL_VERSION,
      app: this.config.app,
      device: deviceId(this.config.seed, device),
      secret: deviceSecret(this.config.seed, device),
      platform: 'android',
      sdkVersion: 'bench',
    });
  }

  private becameReady(i: number): void {
    const now = wallClockMs();
    this.phase[i] = Phase.READY;
    this.readyAt[i] = now;
    this.readyInEpisode[i] = now;
    this.handshakes++;
  }

  private recordLoss(i: number, at: number): void {
    if (Number.isNaN(this.lost[i])) this.lost[i] = at;
    this.losses[i] = this.losses[i]! + 1;
  }

  /** What the SDK does when a connection ends: give up on a final close code, else back off. */
  private closed(i: number, wasReady: boolean, reason: string, code: number | undefined): void {
    if (this.stopped) return;
    const now = wallClockMs();
    this.count(wasReady ? `lost: ${reason}` : reason);
    if (wasReady) {
      this.recordLoss(i, now);
      if (now - this.readyAt[i]! >= this.config.backoff.stableMs) this.attempt[i] = 0;
    } else {
      push(this.failures, i, now);
    }
    this.readyAt[i] = NaN;
    if (code !== undefined && closeInfo(code)?.retry === false) {
      this.phase[i] = Phase.STOPPED;
      return;
    }
    const delay = fullJitterDelay(this.attempt[i]!, this.config.backoff);
    this.attempt[i] = Math.min(this.attempt[i]! + 1, 255);
    this.dueAt[i] = now + delay;
    this.phase[i] = Phase.WAITING;
    this.timers[i] = setTimeout(() => this.open(i, false), delay);
  }

  /** After a RECONNECT frame's delay: close this connection and connect again at once, no backoff. */
  private leave(i: number, socket: Socket): void {
    if (this.sockets[i] !== socket || this.stopped) return;
    this.recordLoss(i, wallClockMs());
    this.count('left after RECONNECT');
    this.sockets[i] = undefined;
    socket.end(clientFrame(Opcode.CLOSE, NORMAL_CLOSE));
    setTimeout(() => socket.destroy(), 2000).unref();
    this.attempt[i] = 0;
    this.readyAt[i] = NaN;
    this.open(i, false);
  }

  private receive(i: number, id: string): void {
    let got = this.received.get(i);
    if (!got) this.received.set(i, (got = new Map()));
    got.set(id, (got.get(id) ?? 0) + 1);
  }
}
