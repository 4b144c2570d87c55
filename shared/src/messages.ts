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

/**
 * A statement to run as a CTE after one named `r` that returns inbox rows (device_id, status) that
 * just left 'pending' as 'expired' or 'dropped': adds them to their devices' gaps (device_gaps), which
 * each device is told in a GAP frame on its next connection. In device order, so that the expiry
 * sweep and a gateway adding to the same devices at once never deadlock.
 */
export const ADD_TO_GAPS_SQL = `
  INSERT INTO device_gaps (device_id, expired, dropped)
  SELECT device_id, count(*) FILTER (WHERE status = 'expired'), count(*) FILTER (WHERE status = 'dropped')
  FROM r GROUP BY device_id ORDER BY device_id
  ON CONFLICT (device_id) DO UPDATE
    SET expired = device_gaps.expired + EXCLUDED.expired, dropped = device_gaps.dropped + EXCLUDED.dropped`;
