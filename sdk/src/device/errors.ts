import type { CloseInfo } from '@mps/shared/protocol';

export class DeviceClientError extends Error {
  constructor(
    readonly code: 'closed_by_server' | 'protocol' | 'not_connected' | 'no_websocket' | 'handler' | 'handshake_timeout',
    message: string,
    readonly close?: CloseInfo,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DeviceClientError';
  }
}
