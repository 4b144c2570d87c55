/**
 * What the vendor fakes share: a TLS server on 127.0.0.1, the bookkeeping every fake exposes
 * (what it accepted and refused, on which connection, how many requests it saw), scripted error
 * answers, a server-initiated shutdown of its connections (HTTP/2 GOAWAY), and JWT checks.
 */
import { verify, type KeyObject } from 'node:crypto';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import type { TestTls } from './tls.js';

/** One notification a fake accepted for one device token. */
export interface Received<Body = unknown> {
  token: string;
  /** The request's headers, lower-case, without HTTP/2 pseudo-headers (`:authority` is kept as `host`). */
  headers: Record<string, string>;
  body: Body;
  /** Date.now() when the fake accepted it. */
  at: number;
  /** The TLS connection it came on: `Connection.id`. */
  connection: number;
}

/** One notification a scripted rule refused, for one device token. */
export interface Refused<Body = unknown> extends Received<Body> {
  status: number;
  /** The vendor's reason or code in the answer. */
  reason: string;
  /** Seconds sent as `Retry-After`. */
  retryAfter?: number;
}

export interface Goaways {
  /** HTTP/2 GOAWAY frames sent, and HTTP/1.1 connections told to close. */
  sent: number;
  /**
   * Streams the fake refused unprocessed after its GOAWAY. Those the client opened past the
   * GOAWAY's last stream are dropped by nghttp2 before the fake sees them: the client counts those.
   */
  refusedStreams: number;
}

/** A TLS connection the fake accepted. */
export interface Connection {
  /** 1 for the first connection, and so on. */
  id: number;
  protocol: 'h2' | 'http/1.1';
  opened: number;
  closed?: number;
}

/** A request to a vendor's OAuth token endpoint. */
export interface TokenRequest {
  path: string;
  host: string | undefined;
  at: number;
}

export interface Fake<Rule, Body = unknown> {
  /** `https://127.0.0.1:<port>` */
  origin: string;
  port: number;
  /** Every notification accepted, one entry per device token, in order. */
  received: Received<Body>[];
  /** Every notification a rule refused, one entry per device token, in order. */
  refused: Refused<Body>[];
  /** Every request that reached the fake, refused ones included. */
  readonly requests: number;
  /** Every TLS connection accepted so far, in order. */
  readonly connections: readonly Connection[];
  /** What `goaway` did: connections told to go away, and HTTP/2 streams refused after a GOAWAY. */
  readonly goaways: Goaways;
  /** Answer with an error from now on (for `times` answers, or for good). */
  answer(rule: Rule): void;
  /**
   * Delay every answer by `ms`. The fake still decides (and records) on arrival, as a vendor
   * delivers a notification whether or not the sender lives to read the answer.
   */
  latency(ms: number): void;
  /**
   * Shuts connections down as a vendor's front end does. HTTP/2: a GOAWAY (NO_ERROR); the streams
   * handled before it are answered, later ones are refused unprocessed (REFUSED_STREAM, safe for the
   * client to retry), and the client opens a new connection. HTTP/1.1: the next answer on each
   * connection says `Connection: close`. With `atRequest`, it happens when that many more requests
   * have arrived, on the connection of the last (over HTTP/2 that request is refused: a GOAWAY
   * racing the client's streams). Otherwise at once, on every open connection.
   */
  goaway(atRequest?: number): void;
  close(): Promise<void>;
}

/** What every answer rule can say besides its error: which device token, and how many times. */
export interface RuleScope {
  /** Only for this device token; omitted: for any. */
  token?: string;
  /** Used up after this many answers; omitted: forever. */
  times?: number;
}

/** Scripted answers, matched first-added first; a rule with `times` is removed once used up. */
export class Rules<Rule extends RuleScope> {
  private readonly pending: Rule[] = [];

  add(rule: Rule): void {
    if (rule.times !== undefined && !(Number.isInteger(rule.times) && rule.times > 0)) {
      throw new RangeError(`times must be a positive integer, got ${rule.times}`);
    }
    this.pending.push({ ...rule });
  }

  take(matches: (rule: Rule) => boolean): Rule | undefined {
    const index = this.pending.findIndex(matches);
    const rule = this.pending[index];
    if (rule === undefined) return undefined;
    if (rule.times !== undefined) {
      rule.times -= 1;
      if (rule.times === 0) this.pending.splice(index, 1);
    }
    return rule;
  }

  /** The first rule for this device token or for any token. */
  forToken(token: string): Rule | undefined {
    return this.take((rule) => rule.token === undefined || rule.token === token);
  }
}

export interface Exchange {
  method: string;
  /** The path without the query string. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: Buffer;
  /** The TLS connection (client certificate checks). */
  socket: TLSSocket;
  /** Its `Connection.id`. */
  connection: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Objects are sent as JSON. */
  body?: string | object;
}

export type Handler = (exchange: Exchange) => Reply | Promise<Reply>;

export interface Listener {
  origin: string;
  port: number;
  readonly requests: number;
  readonly connections: readonly Connection[];
  readonly goaways: Goaways;
  latency(ms: number): void;
  goaway(atRequest?: number): void;
  close(): Promise<void>;
}

export interface ServeOptions {
  tls: TestTls;
  /** Accept HTTP/1.1 besides HTTP/2 (every vendor but APNs). */
  http1: boolean;
  /** Ask for a client certificate and verify it against this CA; the handler decides what a missing one means. */
  clientCa?: string;
  /** Larger bodies get a bare 413 before any vendor check. */
  maxBodyBytes?: number;
  /** The debug data of an HTTP/2 GOAWAY (APNs sends its JSON error body). */
  goawayData?: string;
}

/** How long a GOAWAY is given to reach the client before the connection may be ended. */
const GOAWAY_GRACE_MS = 50;

/** Per connection: what a GOAWAY needs to know and do. */
interface Live {
  record: Connection;
  session?: ServerHttp2Session;
  /** HTTP/2: the highest stream handled; after a GOAWAY, higher ones are refused. */
  lastStream: number;
  /** Requests handled and not answered yet. */
  inFlight: number;
  goneAway: boolean;
  /** The GOAWAY has had time to reach the client. */
  goawayDelivered: boolean;
  /** HTTP/1.1: the next answer closes the connection. */
  closeAfterAnswer: boolean;
}

/** Serves `handle` over TLS on 127.0.0.1 (a free port), HTTP/2 by ALPN and optionally HTTP/1.1. */
export async function serve(options: ServeOptions, handle: Handler): Promise<Listener> {
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  const server = http2.createSecureServer({
    key: options.tls.key,
    cert: options.tls.cert,
    allowHTTP1: options.http1,
    ...(options.clientCa === undefined ? {} : { requestCert: true, rejectUnauthorized: false, ca: options.clientCa }),
  });
  const sockets = new Set<TLSSocket>();
  const connections: Connection[] = [];
  // By the client's address: HTTP/2 requests see the socket through a proxy object, not itself.
  const live = new Map<string, Live>();
  let requests = 0;
  let delayMs = 0;
  let goawayIn: number | undefined;
  const goaways: Goaways = { sent: 0, refusedStreams: 0 };

  const addressOf = (socket: { remoteAddress?: string; remotePort?: number }) => `${socket.remoteAddress}:${socket.remotePort}`;

  // http2 makes a connection's session in its own 'secureConnection' listener, before this one's.
  const sessions = new Map<string, ServerHttp2Session>();
  server.on('session', (session: ServerHttp2Session) => {
    const address = addressOf(session.socket);
    const conn = live.get(address);
    if (conn) conn.session = session;
    else sessions.set(address, session);
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const record: Connection = { id: connections.length + 1, protocol: socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1', opened: Date.now() };
    connections.push(record);
    const address = addressOf(socket);
    live.set(address, {
      record, session: sessions.get(address), lastStream: 0, inFlight: 0, goneAway: false, goawayDelivered: false, closeAfterAnswer: false,
    });
    sessions.delete(address);
    sockets.add(socket);
    socket.once('close', () => {
      record.closed = Date.now();
      if (live.get(address)?.record === record) live.delete(address);
      sockets.delete(socket);
    });
  });

  function goAway(conn: Live, lastStream: number): void {
    if (conn.record.protocol === 'h2') {
      const session = conn.session;
      if (session === undefined || conn.goneAway || session.closed || session.destroyed) return;
      conn.goneAway = true;
      conn.lastStream = lastStream;
      goaways.sent += 1;
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, lastStream, Buffer.from(options.goawayData ?? ''));
      setTimeout(() => {
        conn.goawayDelivered = true;
        closeWhenDrained(conn);
      }, GOAWAY_GRACE_MS).unref();
    } else if (!conn.closeAfterAnswer) {
      conn.closeAfterAnswer = true;
      goaways.sent += 1;
    }
  }

  /**
   * After a GOAWAY the server ends the connection once the streams it kept are answered (a client
   * may leave it open). destroy() sends what the session still holds first; session.close() right
   * after the GOAWAY would not do: its own GOAWAY names the highest stream begun, refused ones
   * included, which the client takes for a protocol error while it still reads the answered ones.
   */
  function closeWhenDrained(conn: Live): void {
    if (conn.goneAway && conn.goawayDelivered && conn.inFlight === 0) conn.session?.destroy();
  }

  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    requests += 1;
    const conn = live.get(addressOf(req.socket));
    const stream = req.httpVersionMajor === 2 ? req.stream : undefined;
    if (conn !== undefined && goawayIn !== undefined && --goawayIn === 0) {
      goawayIn = undefined;
      goAway(conn, conn.lastStream);
    }
    if (conn !== undefined && stream?.id !== undefined) {
      if (conn.goneAway && stream.id > conn.lastStream) {
        goaways.refusedStreams += 1;
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      conn.lastStream = Math.max(conn.lastStream, stream.id);
    }
    if (conn !== undefined) {
      conn.inFlight += 1;
      res.once('close', () => {
        conn.inFlight -= 1;
        closeWhenDrained(conn);
      });
    }
    void respond(req, res, conn);
  });

  async function respond(req: Http2ServerRequest, res: Http2ServerResponse, conn: Live | undefined): Promise<void> {
    let gone = false;
    res.once('close', () => {
      gone = true;
    });
    let reply: Reply;
    try {
      const body = await readBody(req, maxBodyBytes);
      const url = new URL(req.url, 'https://fake.invalid');
      reply = body === undefined
        ? { status: 413, body: { error: `request body over ${maxBodyBytes} bytes` } }
        : await handle({
          method: req.method,
          path: url.pathname,
          query: url.searchParams,
          headers: plainHeaders(req.headers),
          body,
          socket: req.socket as TLSSocket,
          connection: conn?.record.id ?? 0,
        });
    } catch (error) {
      // A bug in a fake must show up in the test that hit it, not vanish.
      reply = { status: 500, body: { error: `fake server failure: ${String(error)}` } };
    }
    if (delayMs > 0) await sleep(delayMs);
    if (gone) return;
    const payload = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    const headers: Record<string, string> = typeof reply.body === 'object' ? { 'content-type': 'application/json; charset=UTF-8' } : {};
    if (conn?.closeAfterAnswer) headers.connection = 'close';
    res.writeHead(reply.status, { ...headers, ...reply.headers, 'content-length': String(Buffer.byteLength(payload)) });
    res.end(payload);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    origin: `https://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    connections,
    goaways,
    latency(ms: number) {
      delayMs = ms;
    },
    goaway(atRequest?: number) {
      if (atRequest !== undefined) {
        if (!(Number.isInteger(atRequest) && atRequest > 0)) throw new RangeError(`atRequest must be a positive integer, got ${atRequest}`);
        goawayIn = atRequest;
        return;
      }
      for (const conn of live.values()) goAway(conn, conn.lastStream);
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

/** The public face of a fake: its listener, rules and record put together. */
export function fakeOf<Rule extends RuleScope, Body>(
  listener: Listener,
  rules: Rules<Rule>,
  received: Received<Body>[],
  refused: Refused<Body>[],
): Fake<Rule, Body> {
  return {
    origin: listener.origin,
    port: listener.port,
    received,
    refused,
    get requests() {
      return listener.requests;
    },
    connections: listener.connections,
    goaways: listener.goaways,
    answer: (rule) => rules.add(rule),
    latency: (ms) => listener.latency(ms),
    goaway: (atRequest) => listener.goaway(atRequest),
    close: () => listener.close(),
  };
}

/** The body, or undefined once it exceeds `limit` (the rest is drained, not kept). */
async function readBody(req: Http2ServerRequest, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
  }
  return size <= limit ? Buffer.concat(chunks) : undefined;
}

/** Lower-case headers without pseudo-headers, except HTTP/2's `:authority`, kept as `host`. */
function plainHeaders(headers: Http2ServerRequest['headers']): Record<string, string> {
  const plain: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    plain[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const authority = headers[':authority'];
  if (plain.host === undefined && typeof authority === 'string') plain.host = authority;
  return plain;
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** JSON.parse for untrusted text: undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined; // callers answer "not JSON" in their vendor's words
  }
}

/** The token of an `Authorization: <scheme> <token>` header (scheme case-insensitive). */
export function credentials(headers: Record<string, string>, scheme: string): string | undefined {
  const value = headers.authorization;
  if (value === undefined) return undefined;
  const space = value.indexOf(' ');
  if (space === -1 || value.slice(0, space).toLowerCase() !== scheme.toLowerCase()) return undefined;
  return value.slice(space + 1).trim();
}

export interface Jwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/** A compact JWS signed with `alg` by the holder of `key`'s private half; undefined otherwise. */
export function verifyJwt(token: string, key: KeyObject, alg: 'ES256' | 'RS256'): Jwt | undefined {
  const [header64, claims64, signature64, extra] = token.split('.');
  if (header64 === undefined || claims64 === undefined || signature64 === undefined || extra !== undefined) return undefined;
  const header = parseJson(Buffer.from(header64, 'base64url').toString('utf8'));
  const claims = parseJson(Buffer.from(claims64, 'base64url').toString('utf8'));
  if (!isObject(header) || !isObject(claims) || header.alg !== alg) return undefined;
  const signed = Buffer.from(`${header64}.${claims64}`);
  const signature = Buffer.from(signature64, 'base64url');
  // JWS carries ECDSA signatures as r‖s, not DER.
  const ok = alg === 'ES256'
    ? verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, signature)
    : verify('sha256', signed, key, signature);
  return ok ? { header, claims } : undefined;
}

/** Seconds since the epoch. */
export const nowSeconds = () => Math.floor(Date.now() / 1000);
