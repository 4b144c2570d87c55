/**
 * The latency stamp a bench puts in a message's text: `mpsb:SEQ:MICROS:` where MICROS is the wall-clock
 * time the message was meant to be sent, in µs. A device finds it with one indexOf over the raw frame
 * (msgpack stores strings as their UTF-8 bytes), without decoding the frame.
 */
const MARKER = Buffer.from('mpsb:');

export function stampText(seq: number, intendedMs: number): string {
  return `mpsb:${seq}:${Math.round(intendedMs * 1000)}:`;
}

/** Wall-clock ms with sub-ms precision, comparable between the processes of one machine. */
export const wallClockMs = (): number => performance.timeOrigin + performance.now();

function digits(data: Buffer, at: number, end: number): { value: number; next: number } | undefined {
  let value = 0;
  let i = at;
  while (i < end && data[i]! >= 0x30 && data[i]! <= 0x39) value = value * 10 + (data[i++]! - 0x30);
  return i > at && i < end && data[i] === 0x3a /* : */ ? { value, next: i + 1 } : undefined;
}

/** The stamp in bytes [start, end) of `data`, if there is one. */
export function readStamp(data: Buffer, start: number, end: number): { seq: number; intendedMs: number } | undefined {
  const at = data.indexOf(MARKER, start);
  if (at < 0 || at >= end) return undefined;
  const seq = digits(data, at + MARKER.length, end);
  if (!seq) return undefined;
  const micros = digits(data, seq.next, end);
  return micros ? { seq: seq.value, intendedMs: micros.value / 1000 } : undefined;
}
