import type { CredentialStore, Credentials } from './client.js';

/** The part of the Web Storage API the store needs (localStorage, sessionStorage, or a stand-in). */
export interface WebStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * Keeps a browser device's id and secret in Web Storage (localStorage by default), under one key
 * per app, so that a reload or a new tab is the same device rather than a new registration.
 */
export class WebStorageCredentialStore implements CredentialStore {
  private readonly storage: WebStorage;

  constructor(
    private readonly key: string,
    storage?: WebStorage,
  ) {
    const found = storage ?? (globalThis as { localStorage?: WebStorage }).localStorage;
    if (!found) throw new Error('no Web Storage here: pass one (e.g. sessionStorage) or use another CredentialStore');
    this.storage = found;
  }

  async load(): Promise<Credentials | undefined> {
    const saved = this.storage.getItem(this.key);
    return saved === null ? undefined : (JSON.parse(saved) as Credentials);
  }

  async save(credentials: Credentials): Promise<void> {
    this.storage.setItem(this.key, JSON.stringify(credentials));
  }
}
