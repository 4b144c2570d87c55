/**
 * Events on their way into the store, checked, with the bytes they were published as: chDB reads
 * those bytes as they are (JSON lines: a message of the stream is one or several), which spares the
 * ingest from re-encoding every event; a ClickHouse server gets TabSeparated rows, which 18.16
 * reads as well as 26.x does.
 */
import type { TrackingEvent } from '@mps/shared';

/** One row of the events table. */
export interface EventRow {
  id: string;
  kind: string;
  app: string;
  message: string;
  device: string;
  channel: string;
  platform: string;
  os_version: string;
  app_version: string;
  sdk_version: string;
  push_type: string;
  /** Seconds since the epoch (UTC). */
  at: number;
}

/** The events table's columns, in TabSeparated order. */
export const EVENT_COLUMNS = [
  'id',
  'kind',
  'app',
  'message',
  'device',
  'channel',
  'platform',
  'os_version',
  'app_version',
  'sdk_version',
  'push_type',
  'at',
] as const satisfies readonly (keyof EventRow)[];

/** The columns of `events` that say which ingest write stored a row (schema.ts). */
export const TAG_COLUMNS = ['batch', 'counted'] as const;

/** The JSON fields of a published event, as a ClickHouse structure, and how they become columns. */
export const EVENT_JSON_STRUCTURE =
  'id String, kind String, app String, message String, device String, channel String, platform String, osVersion String, appVersion String, sdkVersion String, pushType String, at Int64';
export const EVENT_JSON_SELECT =
  "id, kind, app, message, device, channel, platform, osVersion, appVersion, sdkVersion, pushType, toDateTime(intDiv(at, 1000), 'UTC')";

export function toRow(event: TrackingEvent): EventRow {
  return {
    id: event.id,
    kind: event.kind,
    app: event.app,
    message: event.message,
    device: event.device,
    channel: event.channel,
    platform: event.platform,
    os_version: event.osVersion,
    app_version: event.appVersion,
    sdk_version: event.sdkVersion,
    push_type: event.pushType,
    at: Math.floor(event.at / 1000),
  };
}

const NEWLINE = Buffer.from('\n');
const TSV_SPECIAL = /[\\\t\n\r\0]/;
const TSV_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };
const TAB = 9;
const LF = 10;

/** A value as a TabSeparated field. */
export const tsvField = (value: string): string =>
  TSV_SPECIAL.test(value) ? value.replace(/[\\\t\n\r\0]/g, (c) => TSV_ESCAPES[c] as string) : value;

export class EventBatch {
  private readonly items: TrackingEvent[] = [];
  /**
   * Consecutive events (up to `end`) and the bytes they were published as, JSON lines, when those
   * can be passed on as they are; `lines` undefined: encode the events again.
   */
  private readonly runs: { end: number; lines: Uint8Array | undefined }[] = [];

  static of(events: Iterable<TrackingEvent>): EventBatch {
    const batch = new EventBatch();
    for (const event of events) batch.add(event);
    return batch;
  }

  /** `payload` must be the JSON `event` was decoded from. */
  add(event: TrackingEvent, payload?: Uint8Array): void {
    this.items.push(event);
    const last = this.runs[this.runs.length - 1];
    if (payload === undefined && last !== undefined && last.lines === undefined) last.end = this.items.length;
    else this.runs.push({ end: this.items.length, lines: payload });
  }

  /** `lines` must be exactly the JSON lines `events` were decoded from (a message of the stream). */
  addLines(events: readonly TrackingEvent[], lines: Uint8Array): void {
    if (events.length === 0) return;
    for (const event of events) this.items.push(event);
    this.runs.push({ end: this.items.length, lines });
  }

  get size(): number {
    return this.items.length;
  }

  get events(): readonly TrackingEvent[] {
    return this.items;
  }

  filter(keep: (event: TrackingEvent) => boolean): EventBatch {
    const kept = new EventBatch();
    let start = 0;
    for (const run of this.runs) {
      const events = this.items.slice(start, run.end);
      const left = events.filter(keep);
      if (run.lines !== undefined && left.length === events.length) kept.addLines(left, run.lines);
      else for (const event of left) kept.add(event);
      start = run.end;
    }
    return kept;
  }

  /**
   * One JSON object per line. `clean` writes each event again from its checked fields instead of
   * passing its published bytes on: what a retry does, in case the engine refused something that
   * JSON.parse accepts (a repeated key, say).
   */
  jsonLines(clean = false): Buffer {
    const parts: Uint8Array[] = [];
    let start = 0;
    for (const run of this.runs) {
      if (run.lines !== undefined && !clean) parts.push(run.lines, NEWLINE);
      else {
        let text = '';
        for (let i = start; i < run.end; i++) text += `${JSON.stringify(fields(this.items[i] as TrackingEvent))}\n`;
        parts.push(Buffer.from(text));
      }
      start = run.end;
    }
    return Buffer.concat(parts);
  }

  /** TabSeparated rows in EVENT_COLUMNS order, each followed by `tail` (more fields, already escaped). */
  tsv(tail = ''): Buffer {
    let size = 0;
    for (const e of this.items) {
      size += tail.length;
      size += 24 + e.id.length + e.kind.length + e.app.length + e.message.length + e.device.length + e.channel.length;
      size += e.platform.length + e.osVersion.length + e.appVersion.length + e.sdkVersion.length + e.pushType.length;
    }
    // At most 3 bytes per UTF-16 unit: escaped characters are ASCII (2 bytes), others take 1 to 3 in UTF-8.
    const out = Buffer.allocUnsafe(size * 3);
    let at = 0;
    const field = (value: string) => {
      at += out.write(tsvField(value), at);
      out[at++] = TAB;
    };
    for (const e of this.items) {
      field(e.id);
      field(e.kind);
      field(e.app);
      field(e.message);
      field(e.device);
      field(e.channel);
      field(e.platform);
      field(e.osVersion);
      field(e.appVersion);
      field(e.sdkVersion);
      field(e.pushType);
      at += out.write(String(Math.floor(e.at / 1000)), at);
      if (tail !== '') at += out.write(tail, at);
      out[at++] = LF;
    }
    return out.subarray(0, at);
  }
}

/** The event's schema fields only, in a fixed order. */
function fields(e: TrackingEvent): TrackingEvent {
  return {
    id: e.id,
    kind: e.kind,
    app: e.app,
    message: e.message,
    device: e.device,
    channel: e.channel,
    platform: e.platform,
    osVersion: e.osVersion,
    appVersion: e.appVersion,
    sdkVersion: e.sdkVersion,
    pushType: e.pushType,
    at: e.at,
  };
}
