-- A broadcast is stored once (messages.mode = 'broadcast'); each device keeps a cursor: the
-- newest broadcast id it has acked (ids are UUIDv7, so they sort by send time). A reconnecting
-- device catches up on the broadcasts after its cursor that match it. A new device starts at its
-- registration; NULL means before every broadcast.
ALTER TABLE devices ADD COLUMN broadcast_cursor uuid;
-- How many devices a message was aimed at when it was sent (broadcasts have no inbox rows).
ALTER TABLE messages ADD COLUMN targeted integer;
CREATE INDEX messages_broadcasts ON messages (app_id, id) WHERE mode = 'broadcast';
