/**
 * docs/conformance/vectors.json and the tables of docs/protocol.md, checked against the real codec,
 * so that the documents cannot drift from the code. After a protocol change, regenerate the vectors:
 *   node --conditions=source --import tsx docs/conformance/generate.ts
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeClientFrame, decodeServerFrame, encodeFrame, ProtocolError } from './codec.js';
import { CloseCode, closeInfo, type CloseInfo } from './codes.js';
import { clientFrameSchemas, FrameType, Limits, PROTOCOL_VERSION, serverFrameSchemas, type ClientFrame } from './frames.js';

type Direction = 'client' | 'server';

interface Vectors {
  protocolVersion: number;
  frameTypes: Record<string, number>;
  closeCodes: Record<string, CloseInfo>;
  limits: Record<string, number>;
  frames: Array<{ name: string; direction: Direction; hex: string; compactHex: string; frame: Record<string, unknown> }>;
  errors: Array<{ name: string; direction: Direction; hex: string; msgpack?: unknown; error: CloseInfo }>;
  gateway: Array<{ name: string; after: 'open' | 'ready'; hex: string; frame: Record<string, unknown>; close: CloseInfo }>;
}

const docs = new URL('../../../docs/', import.meta.url);
const vectors = JSON.parse(readFileSync(new URL('conformance/vectors.json', docs), 'utf8')) as Vectors;
const protocolMd = readFileSync(new URL('protocol.md', docs), 'utf8');

const bytesOf = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));
const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
/** The real encoder, also fed the maps of error vectors that no typed frame allows. */
const encodeAny = (value: unknown): string => hexOf(encodeFrame(value as ClientFrame));
const decoderOf = (direction: Direction) => (direction === 'client' ? decodeClientFrame : decodeServerFrame);

function errorOf(decode: () => unknown): ProtocolError {
  try {
    decode();
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Error('expected a ProtocolError, but decoding succeeded');
}

/** What codec.ts can refuse bytes with; the other close codes come from the gateway's state. */
const DECODER_CLOSES: CloseInfo[] = [CloseCode.BAD_FRAME, CloseCode.UNKNOWN_FRAME, CloseCode.INVALID_FRAME];

describe('conformance vectors', () => {
  it('carry the tables of the code', () => {
    expect(vectors.protocolVersion).toBe(PROTOCOL_VERSION);
    expect(vectors.frameTypes).toEqual(FrameType);
    expect(vectors.closeCodes).toEqual(CloseCode);
    expect(vectors.limits).toEqual(Limits);
  });

  describe.each(vectors.frames)('frame: $direction $name', ({ direction, hex, compactHex, frame }) => {
    it('decodes to its meaning, in both encodings', () => {
      expect(decoderOf(direction)(bytesOf(hex))).toStrictEqual(frame);
      expect(decoderOf(direction)(bytesOf(compactHex))).toStrictEqual(frame);
    });

    it('is what the encoder writes for its meaning', () => {
      expect(encodeAny(frame)).toBe(hex);
    });
  });

  describe.each(vectors.errors)('error: $direction $name', ({ direction, hex, msgpack, error }) => {
    it('is refused with its close code', () => {
      const refused = errorOf(() => decoderOf(direction)(bytesOf(hex)));
      expect(refused.close).toBe(closeInfo(error.code));
      expect(refused.close).toEqual(error);
    });

    // Bytes that are not msgpack, or hold what JSON cannot show (bin, extensions), carry no value.
    if (msgpack !== undefined) {
      it('is what the encoder writes for its msgpack value', () => {
        expect(encodeAny(msgpack)).toBe(hex);
      });
    }
  });

  describe.each(vectors.gateway)('gateway: $name', ({ hex, frame, close }) => {
    it('is a valid frame, as the encoder writes it', () => {
      expect(decodeClientFrame(bytesOf(hex))).toStrictEqual(frame);
      expect(encodeAny(frame)).toBe(hex);
    });

    it('names a close code of the table', () => {
      expect(closeInfo(close.code)).toEqual(close);
    });
  });

  it('have a valid frame of every frame type, in its direction', () => {
    const sampled = (direction: Direction) =>
      new Set(vectors.frames.filter((v) => v.direction === direction).map((v) => v.frame.t as number));
    expect([...sampled('client')].sort((a, b) => a - b)).toEqual(Object.keys(clientFrameSchemas).map(Number));
    expect([...sampled('server')].sort((a, b) => a - b)).toEqual(Object.keys(serverFrameSchemas).map(Number));
    expect([...sampled('client'), ...sampled('server')].sort((a, b) => a - b)).toEqual(
      Object.values(FrameType).sort((a, b) => a - b),
    );
  });

  it.each(['client', 'server'] as const)('have an error for every close code the decoder raises: %s', (direction) => {
    const raised = new Set(vectors.errors.filter((v) => v.direction === direction).map((v) => v.error.code));
    expect([...raised].sort()).toEqual(DECODER_CLOSES.map((c) => c.code));
  });

  it(`reach the ack limit: ${Limits.IDS_PER_FRAME} ids are valid, one more is refused`, () => {
    const valid = vectors.frames.filter((v) => v.frame.t === FrameType.ACK).map((v) => (v.frame.ids as unknown[]).length);
    expect(valid).toContain(Limits.IDS_PER_FRAME);
    const refused = vectors.errors.map((v) => v.msgpack as { t?: unknown; ids?: unknown[] } | undefined);
    expect(refused.some((m) => m?.t === FrameType.ACK && m.ids?.length === Limits.IDS_PER_FRAME + 1)).toBe(true);
  });
});

describe('docs/protocol.md', () => {
  const rows = (pattern: RegExp) => [...protocolMd.matchAll(pattern)];

  it('lists every frame type with its number, and no other', () => {
    const listed = rows(/^\|\s*(\d+)\s*\|\s*`([A-Z_]+)`\s*\|/gm).map(([, t, name]) => [name, Number(t)]);
    expect(Object.fromEntries(listed)).toEqual(FrameType);
    expect(listed).toHaveLength(Object.keys(FrameType).length);
  });

  it('lists every close code with its reason and retry flag, and no other', () => {
    const listed = rows(/^\|\s*(\d{4})\s*\|\s*`([a-z_]+)`\s*\|\s*(yes|no)\s*\|/gm).map(([, code, reason, retry]) => ({
      code: Number(code),
      reason,
      retry: retry === 'yes',
    }));
    expect(listed).toEqual(Object.values(CloseCode).map((c) => ({ ...c })));
  });
});
