/**
 * NATS subject, stream and bucket names: the only place they are spelled.
 * A prefix namespaces a whole deployment (and each test run) on a shared NATS.
 */
import type { EventKind } from './events.js';

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

function token(kind: string, value: string): string {
  if (!TOKEN.test(value)) throw new Error(`${kind} "${value}" cannot be used in a NATS subject`);
  return value;
}

/** User ids come from the app's own user system, so they are encoded into a safe token. */
export function userToken(userId: string): string {
  if (userId === '') throw new Error('an empty user id cannot be used in a NATS subject');
  return Buffer.from(userId, 'utf8').toString('base64url');
}

/** Lower-case so that stream and bucket names (upper-cased) stay distinct per prefix. */
const PREFIX = /^[a-z][a-z0-9]{0,31}$/;

export function createSubjects(prefix: string) {
  if (!PREFIX.test(prefix)) throw new Error(`prefix "${prefix}" must be a lower-case letter then up to 31 lower-case letters or digits`);
  const upper = prefix.toUpperCase();
  return {
    prefix,
    device: (app: string, device: string) => `${prefix}.dev.${token('app', app)}.${token('device', device)}`,
    user: (app: string, user: string) => `${prefix}.usr.${token('app', app)}.${userToken(user)}`,
    broadcast: (app: string) => `${prefix}.bc.${token('app', app)}`,
    event: (app: string, kind: EventKind) => `${prefix}.ev.${token('app', app)}.${kind}`,
    /** Every tracking event of every app, for stream definitions and consumers. */
    allEvents: `${prefix}.ev.>`,
    eventsOfKind: (kind: EventKind) => `${prefix}.ev.*.${kind}`,
    /** Request/reply: a message's funnel from analytics. */
    reportFunnel: `${prefix}.analytics.funnel`,
    /** Request/reply: event counts over time from analytics. */
    reportSeries: `${prefix}.analytics.series`,
    /** The vendor work queue: one job per push and target. */
    vendorJob: (app: string) => `${prefix}.vq.${token('app', app)}`,
    allVendorJobs: `${prefix}.vq.>`,
    vendorStream: `${upper}_VENDOR`,
    eventStream: `${upper}_EVENTS`,
    nonceBucket: `${upper}_NONCES`,
  } as const;
}

export type Subjects = ReturnType<typeof createSubjects>;
