/**
 * A message's (or a task's) funnel: distinct devices per event kind, from the raw events. Counting
 * distinct (message, device) pairs, not rows, keeps it right before ReplacingMergeTree merges and
 * when a device reports the same thing twice.
 */
import { Table } from '../store/schema.js';
import { quote, type EventStore } from '../store/store.js';
import type { Funnel, FunnelReply, FunnelRequest } from './protocol.js';

export async function messageFunnel(store: EventStore, request: FunnelRequest): Promise<Funnel> {
  return (await messageFunnelByChannel(store, request)).funnel;
}

export async function messageFunnelByChannel(store: EventStore, request: FunnelRequest): Promise<FunnelReply> {
  // WITH TOTALS would do both in one query, but its JSONEachRow output differs between versions.
  const messages = 'messages' in request ? request.messages : [request.message];
  const where = `app = ${quote(request.app)} AND message IN (${messages.map(quote).join(', ')})`;
  const [total, perChannel] = await Promise.all([
    store.select<{ kind: string; devices: string | number }>(
      `SELECT kind, uniqExact(message, device) AS devices FROM ${Table.EVENTS} WHERE ${where} GROUP BY kind ORDER BY kind`,
    ),
    store.select<{ channel: string; kind: string; devices: string | number }>(
      `SELECT channel, kind, uniqExact(message, device) AS devices FROM ${Table.EVENTS} WHERE ${where}
       GROUP BY channel, kind ORDER BY channel, kind`,
    ),
  ]);
  const funnel: Record<string, number> = Object.fromEntries(total.map((r) => [r.kind, Number(r.devices)]));
  const channels: Record<string, Record<string, number>> = {};
  for (const r of perChannel) (channels[r.channel] ??= {})[r.kind] = Number(r.devices);
  return { funnel, channels } as FunnelReply;
}
