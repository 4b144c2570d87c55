/**
 * Every frame of the device protocol, as msgpack maps tagged by a numeric `t`.
 * The schemas here are the single definition: the gateway and the SDK validate with them,
 * and docs/protocol.md is written from them.
 */
import Type, { type Static } from 'typebox';
import { oneOf } from '../schema.js';

export const PROTOCOL_VERSION = 1;

export const FrameType = {
  // device -> gateway
  REGISTER: 1,
  AUTH: 2,
  ACK: 3,
  PING: 4,
  // gateway -> device
  READY: 64,
  MESSAGE: 65,
  PONG: 66,
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

export const AuthFrame = Type.Object({
  t: Type.Literal(FrameType.AUTH),
  v: Type.Integer(),
  app: Id,
  device: Id,
  secret: Type.String({ minLength: 1, maxLength: 128 }),
  ...DeviceFacts,
});

export const AckFrame = Type.Object({
  t: Type.Literal(FrameType.ACK),
  ids: Type.Array(Id, { minItems: 1, maxItems: 256 }),
});

export const PingFrame = Type.Object({ t: Type.Literal(FrameType.PING) });

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

export type RegisterFrame = Static<typeof RegisterFrame>;
export type AuthFrame = Static<typeof AuthFrame>;
export type AckFrame = Static<typeof AckFrame>;
export type PingFrame = Static<typeof PingFrame>;
export type ReadyFrame = Static<typeof ReadyFrame>;
export type MessageFrame = Static<typeof MessageFrame>;
export type PongFrame = Static<typeof PongFrame>;

export type ClientFrame = RegisterFrame | AuthFrame | AckFrame | PingFrame;
export type ServerFrame = ReadyFrame | MessageFrame | PongFrame;

export const clientFrameSchemas = {
  [FrameType.REGISTER]: RegisterFrame,
  [FrameType.AUTH]: AuthFrame,
  [FrameType.ACK]: AckFrame,
  [FrameType.PING]: PingFrame,
} as const;

export const serverFrameSchemas = {
  [FrameType.READY]: ReadyFrame,
  [FrameType.MESSAGE]: MessageFrame,
  [FrameType.PONG]: PongFrame,
} as const;
