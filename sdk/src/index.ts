/**
 * @mps/sdk for Node: the device client (with the `ws` package as its WebSocket) and the server
 * client. Browsers import '@mps/sdk/browser'.
 */
import WebSocket from 'ws';
import { DeviceClient as BaseDeviceClient, type DeviceClientOptions, type WebSocketConstructor } from './device/client.js';

export class DeviceClient extends BaseDeviceClient {
  constructor(options: DeviceClientOptions) {
    super({ WebSocket: WebSocket as unknown as WebSocketConstructor, ...options });
  }
}

export {
  MemoryCredentialStore,
  SDK_VERSION,
  type ConnectionState,
  type CredentialStore,
  type Credentials,
  type Gap,
  type DeviceClientOptions,
} from './device/client.js';
export { DeviceClientError } from './device/errors.js';
export { FileCredentialStore } from './device/file-store.js';
export * from './server/client.js';
export type { MessageFrame, Platform, PushType } from '@mps/shared/protocol';
