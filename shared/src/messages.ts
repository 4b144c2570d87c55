/**
 * A stored message and the device frame it becomes. The control plane (live publish) and the
 * gateway (redelivery from the inbox) both build frames here, so both send the same bytes.
 */
import { encodeFrame, FrameType, type MessageFrame, type PushType } from './protocol/index.js';

/** What the API accepted, stored as messages.content. */
export interface MessageContent {
  title?: string;
  body?: string;
  payload?: unknown;
  extras?: Record<string, string>;
}

export interface StoredMessage {
  id: string;
  pushType: PushType;
  content: MessageContent;
  expiresAt: Date;
}

export function messageFrame(message: StoredMessage): MessageFrame {
  const { title, body, payload, extras } = message.content;
  return {
    t: FrameType.MESSAGE,
    id: message.id,
    type: message.pushType,
    ...(title !== undefined && { title }),
    ...(body !== undefined && { body }),
    ...(payload !== undefined && { payload }),
    ...(extras !== undefined && { extras }),
    exp: message.expiresAt.getTime(),
  };
}

export function encodeMessage(message: StoredMessage): Uint8Array {
  return encodeFrame(messageFrame(message));
}
