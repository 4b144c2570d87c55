/**
 * The demo device `make run` starts: registers once (credentials under DATA_DIR), stays connected
 * and prints every message it receives.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceClient, FileCredentialStore } from './index.js';

const dataDir = process.env.DATA_DIR ?? './data';
const demo = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8')) as { app: string; gatewayUrl: string };
const client = new DeviceClient({
  url: demo.gatewayUrl,
  app: demo.app,
  platform: 'web',
  appVersion: 'demo',
  credentials: new FileCredentialStore(join(dataDir, 'demo-device.json')),
  onMessage: (message) => {
    console.log(`demo device received ${message.id}: ${message.title ?? ''} ${message.body ?? ''}`.trim());
  },
});
client.on('state', (state) => console.log(`demo device ${state}`));
client.on('error', (error) => console.error(`demo device: ${error.message}`));
const device = await client.connect();
console.log(`demo device ${device} connected`);
process.once('SIGINT', () => client.close());
process.once('SIGTERM', () => client.close());
