/**
 * The HTTPS agent of the vendor HTTP clients (firebase-admin's send and token requests, Huawei,
 * Xiaomi): keep-alive, and optionally every connection made to one origin whatever host a request
 * names — an operator's proxy or regional endpoint in production, a fake vendor in tests. A
 * redirected request keeps its Host header and TLS server name (SNI, certificate check), so the
 * origin must present a certificate valid for the vendor's host name; `ca` adds a CA to trust.
 */
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

export interface VendorAgentOptions {
  /** `https://host[:port]`: where every connection goes instead of the request's host. */
  origin?: string;
  /** A PEM CA trusted in addition to the system roots. */
  ca?: string;
  /** Sockets per host (Node's default: unlimited). */
  maxSockets?: number;
}

export function vendorAgent(opts: VendorAgentOptions = {}): https.Agent {
  const options: https.AgentOptions = {
    keepAlive: true,
    ...(opts.maxSockets === undefined ? {} : { maxSockets: opts.maxSockets }),
    // Setting `ca` replaces Node's roots, so they are passed along: in one secure context made
    // once (a `ca` option would be parsed again for every connection and stringified into the
    // agent's pool key for every request, which costs milliseconds each).
    ...(opts.ca === undefined ? {} : { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, opts.ca] }) }),
  };
  if (opts.origin === undefined) return new https.Agent(options);
  const origin = new URL(opts.origin);
  if (origin.protocol !== 'https:' || origin.pathname !== '/' || origin.search !== '') {
    throw new TypeError(`vendor origin must be https://host[:port], got ${opts.origin}`);
  }
  return new RedirectingAgent(options, origin.hostname.replace(/^\[(.*)\]$/, '$1'), Number(origin.port || 443));
}

class RedirectingAgent extends https.Agent {
  constructor(
    options: https.AgentOptions,
    private readonly originHost: string,
    private readonly originPort: number,
  ) {
    super(options);
  }

  // By now http.Agent has set `servername` from the request's Host header; only the address changes.
  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return super.createConnection({ ...options, host: this.originHost, port: this.originPort }, callback);
  }
}
