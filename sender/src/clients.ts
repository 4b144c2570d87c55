/**
 * Vendor clients per (app, vendor), built from the app's sealed credentials and rebuilt when they
 * change: a client holds connections (an APNs HTTP/2 session, keep-alive sockets, OAuth tokens)
 * that are worth keeping across jobs.
 */
import type { ChannelStore, Vendor } from '@mps/shared';
import { apnsClient } from './vendors/apns.js';
import { fcmClient } from './vendors/fcm.js';
import { huaweiClient } from './vendors/huawei.js';
import type { ClientFactory, Endpoints, VendorClient } from './vendors/types.js';
import { xiaomiClient } from './vendors/xiaomi.js';

const FACTORIES: { [V in Vendor]: ClientFactory<V> } = { apns: apnsClient, fcm: fcmClient, huawei: huaweiClient, xiaomi: xiaomiClient };

/** How long a looked-up credential version is trusted before the store is asked again. */
const RECHECK_MS = 5000;

interface Entry {
  version: string;
  client: VendorClient;
  checkedAt: number;
}

export class VendorClients {
  private readonly entries = new Map<string, Entry>();
  private readonly absent = new Map<string, number>();
  private readonly loading = new Map<string, Promise<VendorClient | undefined>>();

  constructor(
    private readonly channels: ChannelStore,
    private readonly endpoints: Endpoints,
  ) {}

  /** The client for the app's channel of this vendor, or undefined when none is configured. */
  get(app: string, vendor: Vendor): Promise<VendorClient | undefined> {
    const key = `${app}\u0000${vendor}`;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.load(key, app, vendor).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  private async load(key: string, app: string, vendor: Vendor): Promise<VendorClient | undefined> {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && now - entry.checkedAt < RECHECK_MS) return entry.client;
    if (!entry && now - (this.absent.get(key) ?? -Infinity) < RECHECK_MS) return undefined;
    const opened = await this.channels.open(app, vendor);
    if (!opened) {
      this.entries.delete(key);
      this.absent.set(key, now);
      if (entry) await entry.client.close();
      return undefined;
    }
    this.absent.delete(key);
    if (entry && entry.version === opened.version) {
      entry.checkedAt = now;
      return entry.client;
    }
    if (entry) await entry.client.close();
    const client = (FACTORIES[vendor] as ClientFactory<Vendor>)(app, opened.config, this.endpoints);
    this.entries.set(key, { version: opened.version, client, checkedAt: now });
    return client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.client.close()));
    this.entries.clear();
  }
}
