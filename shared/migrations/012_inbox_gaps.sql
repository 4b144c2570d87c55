-- What a device missed (issue #10, scenario 4). A device's inbox keeps at most the gateway's
-- GATEWAY_INBOX_CAP pending messages: when it connects with more, the oldest are 'dropped'.
ALTER TABLE inbox DROP CONSTRAINT inbox_status_check;
ALTER TABLE inbox ADD CONSTRAINT inbox_status_check
  CHECK (status IN ('pending', 'delivered', 'expired', 'revoked', 'failed', 'dropped'));

-- Messages due to a device that it will never get, and it has not been told about yet: counted by
-- the expiry sweep and by the gateway's catch-up, told in one GAP frame on the device's next
-- connection, taken off when the device acks that frame. Its own table, not columns of devices:
-- the sweep adds to it without contending with the connect path's update of the device's facts.
CREATE TABLE device_gaps (
  device_id  uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
  expired    integer NOT NULL DEFAULT 0 CHECK (expired >= 0),
  dropped    integer NOT NULL DEFAULT 0 CHECK (dropped >= 0)
);
