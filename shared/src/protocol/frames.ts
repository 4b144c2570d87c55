/**
 * Every frame of the device protocol, as msgpack maps tagged by a numeric `t`.
 * The schemas here are the single definition: the gateway and the SDK validate with them,
 * and docs/protocol.md is written from them.
 */
import Type, { type Static } from 'typebox';
import { namedRecord, oneOf } from '../schema.js';

export const PROTOCOL_VERSION = 1;

export const FrameType = {
  // device -> gateway
  REGISTER: 1,
  AUTH: 2,
  ACK: 3,
  PING: 4,
  BIND: 5,
  UNBIND: 6,
  VENDOR_TOKEN: 7,
  TAGS: 8,
  ATTRIBUTES: 9,
  TRACK: 10,
  GAP_ACK: 11,
  // gateway -> device
  READY: 64,
  MESSAGE: 65,
  PONG: 66,
  BOUND: 67,
  REVOKE: 68,
  RECONNECT: 69,
  GAP: 70,
} as const;

export const Vendor = ['apns', 'fcm', 'huawei', 'xiaomi'] as const;
export type Vendor = (typeof Vendor)[number];

/** What a device reports about a message it received (after the gateway's delivery). */
export const TrackKind = ['arrived', 'opened', 'ignored'] as const;
export type TrackKind = (typeof TrackKind)[number];

export const Limits = {
  /** Tags a device may carry. */
  TAGS_PER_DEVICE: 100,
  TAG_LENGTH: 64,
  /** Attribute names an app may use. */
  ATTRIBUTES: 10,
  ATTRIBUTE_VALUE_LENGTH: 128,
  IDS_PER_FRAME: 256,
} as const;

export const Platform = ['android', 'ios', 'web', 'harmony'] as const;
export type Platform = (typeof Platform)[number];

export const PushType = ['notification', 'silent'] as const;
export type PushType = (typeof PushType)[number];

const Id = Type.String({ minLength: 1, maxLength: 64 });
const Short = Type.String({ maxLength: 64 });

/** Device facts, kept current on every register/auth. */
const DeviceFacts = {
  platform: oneOf(Platform),
  osVersion: Type.Optional(Short),
  appVersion: Type.Optional(Short),
  sdkVersion: Type.Optional(Short),
  locale: Type.Optional(Type.String({ maxLength: 35 })),
  timezone: Type.Optional(Type.String({ maxLength: 64 })),
};

export const RegisterFrame = Type.Object({
  t: Type.Literal(FrameType.REGISTER),
  v: Type.Integer(),
  app: Id,
  /** Present when an already registered device registers again: it keeps its id. */
  device: Type.Optional(Id),
  secret: Type.Optional(Type.String({ maxLength: 128 })),
  ...DeviceFacts,
});

const authBase = {
  t: Type.Literal(FrameType.AUTH),
  v: Type.Integer(),
  app: Id,
  device: Id,
  ...DeviceFacts,
};

/** Exactly one of `secret` (issued at registration) or `token` (a connect token from the business server). */
export const AuthFrame = Type.Union([
  Type.Object({ ...authBase, secret: Type.String({ minLength: 1, maxLength: 128 }), token: Type.Optional(Type.Never()) }),
  Type.Object({ ...authBase, token: Type.String({ minLength: 1, maxLength: 2048 }), secret: Type.Optional(Type.Never()) }),
]);

export const AckFrame = Type.Object({
  t: Type.Literal(FrameType.ACK),
  ids: Type.Array(Id, { minItems: 1, maxItems: Limits.IDS_PER_FRAME }),
  /** The vendor channel these messages were shown through (absent: this socket). */
  ch: Type.Optional(oneOf(Vendor)),
});

export const PingFrame = Type.Object({ t: Type.Literal(FrameType.PING) });

/** Binds the device to the user named by a bind token the business server signed. */
export const BindFrame = Type.Object({
  t: Type.Literal(FrameType.BIND),
  token: Type.String({ minLength: 1, maxLength: 2048 }),
});

export const UnbindFrame = Type.Object({ t: Type.Literal(FrameType.UNBIND) });

export const VendorTokenFrame = Type.Object({
  t: Type.Literal(FrameType.VENDOR_TOKEN),
  vendor: oneOf(Vendor),
  token: Type.String({ minLength: 1, maxLength: 4096 }),
});

const Tag = Type.String({ minLength: 1, maxLength: Limits.TAG_LENGTH });

export const TagsFrame = Type.Object({
  t: Type.Literal(FrameType.TAGS),
  add: Type.Optional(Type.Array(Tag, { maxItems: Limits.TAGS_PER_DEVICE })),
  remove: Type.Optional(Type.Array(Tag, { maxItems: Limits.TAGS_PER_DEVICE })),
});

/** Sets attributes; a null value removes one. */
export const AttributesFrame = Type.Object({
  t: Type.Literal(FrameType.ATTRIBUTES),
  set: namedRecord(Type.Union([Type.String({ maxLength: Limits.ATTRIBUTE_VALUE_LENGTH }), Type.Null()]), 64),
});

export const TrackFrame = Type.Object({
  t: Type.Literal(FrameType.TRACK),
  events: Type.Array(
    Type.Object({
      id: Id,
      ev: oneOf(TrackKind),
      /** When it happened on the device, ms since the epoch (default: when the gateway got it). */
      at: Type.Optional(Type.Integer()),
    }),
    { minItems: 1, maxItems: Limits.IDS_PER_FRAME },
  ),
});

const GapCounts = {
  /** Passed their validity period before the device got them. */
  expired: Type.Integer({ minimum: 0 }),
  /** The oldest of more pending messages than the device's inbox keeps. */
  dropped: Type.Integer({ minimum: 0 }),
};

/** The device was told of a gap: the counts of the GAP frame it answers. */
export const GapAckFrame = Type.Object({ t: Type.Literal(FrameType.GAP_ACK), ...GapCounts });

export const ReadyFrame = Type.Object({
  t: Type.Literal(FrameType.READY),
  device: Id,
  /** Only in answer to a register that created the device: store it, it is never sent again. */
  secret: Type.Optional(Type.String()),
  /** Server time in ms since the epoch. */
  time: Type.Integer(),
  /** The client should send a ping when it has sent nothing for this many seconds. */
  heartbeat: Type.Integer(),
});

export const MessageFrame = Type.Object({
  t: Type.Literal(FrameType.MESSAGE),
  id: Id,
  type: oneOf(PushType),
  title: Type.Optional(Type.String()),
  body: Type.Optional(Type.String()),
  payload: Type.Optional(Type.Unknown()),
  extras: Type.Optional(Type.Record(Type.String(), Type.String())),
  /** Expiry in ms since the epoch: the message must not be shown after it. */
  exp: Type.Integer(),
});

export const PongFrame = Type.Object({ t: Type.Literal(FrameType.PONG) });

/** The device's user after a bind or unbind (null: none). */
export const BoundFrame = Type.Object({
  t: Type.Literal(FrameType.BOUND),
  user: Type.Union([Type.String(), Type.Null()]),
});

/** A message was withdrawn: do not show it, and remove it if shown. */
export const RevokeFrame = Type.Object({ t: Type.Literal(FrameType.REVOKE), id: Id });

/** The gateway is going away: reconnect (to any gateway) after `after` ms. */
export const ReconnectFrame = Type.Object({ t: Type.Literal(FrameType.RECONNECT), after: Type.Integer({ minimum: 0 }) });

/**
 * Messages meant for this device that it will never get (the explicit signal that the delivery
 * promise could not be kept, as FCM's "deleted messages"): resync with the business server. Sent
 * after READY, before the pending messages, until the device answers with GAP_ACK.
 */
export const GapFrame = Type.Object({ t: Type.Literal(FrameType.GAP), ...GapCounts });

export type RegisterFrame = Static<typeof RegisterFrame>;
export type AuthFrame = Static<typeof AuthFrame>;
export type AckFrame = Static<typeof AckFrame>;
export type PingFrame = Static<typeof PingFrame>;
export type ReadyFrame = Static<typeof ReadyFrame>;
export type MessageFrame = Static<typeof MessageFrame>;
export type PongFrame = Static<typeof PongFrame>;
export type BindFrame = Static<typeof BindFrame>;
export type UnbindFrame = Static<typeof UnbindFrame>;
export type VendorTokenFrame = Static<typeof VendorTokenFrame>;
export type TagsFrame = Static<typeof TagsFrame>;
export type AttributesFrame = Static<typeof AttributesFrame>;
export type TrackFrame = Static<typeof TrackFrame>;
export type BoundFrame = Static<typeof BoundFrame>;
export type RevokeFrame = Static<typeof RevokeFrame>;
export type ReconnectFrame = Static<typeof ReconnectFrame>;
export type GapFrame = Static<typeof GapFrame>;
export type GapAckFrame = Static<typeof GapAckFrame>;
/** How many messages meant for a device it missed, by why (the counts of GAP and GAP_ACK). */
export type Gap = Omit<GapFrame, 't'>;

export type ClientFrame =
  | RegisterFrame
  | AuthFrame
  | AckFrame
  | PingFrame
  | BindFrame
  | UnbindFrame
  | VendorTokenFrame
  | TagsFrame
  | AttributesFrame
  | TrackFrame
  | GapAckFrame;
export type ServerFrame = ReadyFrame | MessageFrame | PongFrame | BoundFrame | RevokeFrame | ReconnectFrame | GapFrame;

export const clientFrameSchemas = {
  [FrameType.REGISTER]: RegisterFrame,
  [FrameType.AUTH]: AuthFrame,
  [FrameType.ACK]: AckFrame,
  [FrameType.PING]: PingFrame,
  [FrameType.BIND]: BindFrame,
  [FrameType.UNBIND]: UnbindFrame,
  [FrameType.VENDOR_TOKEN]: VendorTokenFrame,
  [FrameType.TAGS]: TagsFrame,
  [FrameType.ATTRIBUTES]: AttributesFrame,
  [FrameType.TRACK]: TrackFrame,
  [FrameType.GAP_ACK]: GapAckFrame,
} as const;

export const serverFrameSchemas = {
  [FrameType.READY]: ReadyFrame,
  [FrameType.MESSAGE]: MessageFrame,
  [FrameType.PONG]: PongFrame,
  [FrameType.BOUND]: BoundFrame,
  [FrameType.REVOKE]: RevokeFrame,
  [FrameType.RECONNECT]: ReconnectFrame,
  [FrameType.GAP]: GapFrame,
} as const;
