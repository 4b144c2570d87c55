-- What a device reports over its socket beyond registration.

-- Tags and attributes select devices for broadcasts (conditions over them).
ALTER TABLE devices
  ADD COLUMN tags        text[] NOT NULL DEFAULT '{}',
  ADD COLUMN attributes  jsonb  NOT NULL DEFAULT '{}';
CREATE INDEX devices_tags ON devices USING gin (tags);

-- Whether devices may set their own tags and attributes (otherwise only the API may).
ALTER TABLE apps ADD COLUMN device_tags_writable boolean NOT NULL DEFAULT true;

-- The vendor channel token of a device, one per vendor, for the vendor senders.
CREATE TABLE device_vendor_tokens (
  device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  vendor      text NOT NULL CHECK (vendor IN ('apns', 'fcm', 'huawei', 'xiaomi')),
  token       text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, vendor)
);

-- Messages to a user wait here until they expire, so that a device the user binds later
-- still gets them (copied into that device's inbox when it binds or connects).
CREATE TABLE user_inbox (
  app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  user_id     text NOT NULL,
  message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (app_id, user_id, message_id)
);
CREATE INDEX user_inbox_expiry ON user_inbox (expires_at);
