-- Vendor channel credentials of an app, one row per vendor: the whole configuration sealed with
-- the master key (AES-256-GCM), and a summary without secrets for the API and the console.
CREATE TABLE app_channels (
  app_id         text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  vendor         text NOT NULL CHECK (vendor IN ('apns', 'fcm', 'huawei', 'xiaomi')),
  config_sealed  bytea NOT NULL,
  summary        jsonb NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (app_id, vendor)
);

-- A token a vendor called invalid is not used again until the device reports a new one.
ALTER TABLE device_vendor_tokens ADD COLUMN dead_at timestamptz, ADD COLUMN dead_reason text;

-- How a message travels: 'auto' (the socket if the device is connected, else its vendor channel,
-- while the inbox keeps it for the socket), 'socket' only, or 'vendor' only; and the vendor fields.
ALTER TABLE messages
  ADD COLUMN channel_policy  text NOT NULL DEFAULT 'auto' CHECK (channel_policy IN ('auto', 'socket', 'vendor')),
  ADD COLUMN vendor_options  jsonb;

-- One row per (message, device) that a vendor sender handled: the claim that keeps a redelivered
-- job from sending twice, and the result the API reports. 'sending': claimed, the request may be
-- in flight; 'retry': the vendor asked to try later.
CREATE TABLE vendor_sends (
  message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  vendor      text NOT NULL CHECK (vendor IN ('apns', 'fcm', 'huawei', 'xiaomi')),
  status      text NOT NULL CHECK (status IN ('sending', 'retry', 'sent', 'failed', 'skipped')),
  reason      text,
  attempts    integer NOT NULL DEFAULT 1,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (message_id, device_id)
);
