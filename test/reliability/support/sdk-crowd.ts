/**
 * Real SDK devices (the Node DeviceClient over `ws`, with the SDK's own reconnect settings) that
 * record when they lose their connection, when each connection attempt starts (the WebSocket is
 * constructed once per attempt) and when they are READY again, on the same wall clock as the lean
 * load clients (bench/src/loadgen/stamp.ts), and count what each was shown.
 */
import WebSocket from 'ws';
import { DeviceClient, MemoryCredentialStore, type MessageFrame } from '@mps/sdk';
import type { DeviceEpisode } from '../../../bench/src/loadgen/reconnecting-messages.js';
import { wallClockMs } from '../../../bench/src/loadgen/stamp.js';

interface Episode {
  lost: number | null;
  ready: number | null;
  losses: number;
  attempts: number[];
  failures: number[];
}

const fresh = (): Episode => ({ lost: null, ready: null, losses: 0, attempts: [], failures: [] });

export class SdkCrowd {
  readonly clients: DeviceClient[] = [];
  readonly ids: string[] = [];
  readonly shown: Map<string, number>[] = [];
  expiredShown = 0;
  /** Errors the SDK reported, by close reason or code. */
  readonly errors = new Map<string, number>();
  private records: Episode[] = [];

  constructor(
    private readonly url: string,
    private readonly app: string,
  ) {}

  /** Registers and connects `n` devices, 50 at a time (each registration writes a row). */
  async connect(n: number): Promise<void> {
    for (let from = 0; from < n; from += 50) {
      const batch: Promise<string>[] = [];
      for (let i = from; i < Math.min(n, from + 50); i++) batch.push(this.add(i));
      this.ids.push(...(await Promise.all(batch)));
    }
  }

  private add(i: number): Promise<string> {
    const seen = new Map<string, number>();
    this.shown.push(seen);
    this.records.push(fresh());
    const record = () => this.records[i] as Episode;
    let client: DeviceClient | undefined;
    class Recording extends WebSocket {
      constructor(url: string) {
        record().attempts.push(wallClockMs());
        super(url);
        // Before the SDK's own onclose: its state still says whether this attempt reached READY.
        this.once('close', () => {
          if (client?.state !== 'ready') record().failures.push(wallClockMs());
        });
      }
    }
    client = new DeviceClient({
      url: this.url,
      app: this.app,
      platform: i % 2 === 0 ? 'android' : 'ios',
      credentials: new MemoryCredentialStore(),
      WebSocket: Recording as never,
      onMessage: (m: MessageFrame) => {
        seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
        if (m.exp <= Date.now()) this.expiredShown += 1;
      },
    });
    let previous = client.state;
    client.on('state', (state) => {
      const r = record();
      if (previous === 'ready' && state !== 'ready') {
        r.lost ??= wallClockMs();
        r.losses += 1;
      }
      if (state === 'ready') r.ready = wallClockMs();
      previous = state;
    });
    client.on('error', (e) => {
      const reason = e.close?.reason ?? e.code;
      this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
    });
    this.clients.push(client);
    return client.connect();
  }

  /** Starts a new episode: what was recorded so far is forgotten. */
  mark(): void {
    this.records = this.records.map(fresh);
    this.errors.clear();
  }

  /** Devices that lost their connection or attempted one since the mark (`device` is the crowd's index). */
  episode(): DeviceEpisode[] {
    return this.records.flatMap((r, device) => (r.losses > 0 || r.attempts.length > 0 ? [{ device, ...r }] : []));
  }

  get ready(): number {
    return this.clients.filter((c) => c.state === 'ready').length;
  }

  /** Per device, how many of `expected` were shown once, never, more than once, and what else was shown. */
  tally(expected: Set<string>[]): { expected: number; once: number; lost: number; duplicates: number; unexpected: number } {
    const t = { expected: 0, once: 0, lost: 0, duplicates: 0, unexpected: 0 };
    expected.forEach((ids, i) => {
      const seen = this.shown[i] as Map<string, number>;
      t.expected += ids.size;
      for (const id of ids) {
        const n = seen.get(id) ?? 0;
        if (n === 0) t.lost += 1;
        else if (n === 1) t.once += 1;
      }
      for (const [id, n] of seen) {
        if (n > 1) t.duplicates += 1;
        if (!ids.has(id)) t.unexpected += 1;
      }
    });
    return t;
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
