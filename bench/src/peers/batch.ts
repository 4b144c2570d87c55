/**
 * What a publisher sends the uws_raw and ws peers: the broadcasts of one tick in one WebSocket
 * message, each a 4-byte big-endian length and the frame. Our gateway gets a tick's broadcasts in one
 * read from NATS and publishes them in one event-loop turn; so does a peer that gets them this way.
 */
export function packBatch(frames: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const frame of frames) {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(frame.byteLength);
    parts.push(length, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
  }
  return Buffer.concat(parts);
}

/** Calls `each` with every frame of a batch, as views into it. */
export function unpackBatch(batch: Uint8Array, each: (frame: Uint8Array) => void): void {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  for (let at = 0; at + 4 <= batch.byteLength; ) {
    const length = view.getUint32(at);
    each(batch.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
}
