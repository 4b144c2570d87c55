-- Apps are tenants; everything else hangs off one.
CREATE TABLE apps (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- API keys of an app. HMAC secrets are sealed with the master key (AES-256-GCM);
-- public keys (RSA, Ed25519) are stored as PEM.
CREATE TABLE app_keys (
  id             text PRIMARY KEY,
  app_id         text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  kind           text NOT NULL CHECK (kind IN ('hmac', 'rsa', 'ed25519')),
  secret_sealed  bytea,
  public_key     text,
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'hmac') = (secret_sealed IS NOT NULL))
);
CREATE INDEX app_keys_app ON app_keys (app_id);

-- Devices; the per-device secret is stored as its SHA-256 (it has 256 bits of entropy).
CREATE TABLE devices (
  id            uuid PRIMARY KEY,
  app_id        text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  secret_hash   bytea NOT NULL,
  platform      text NOT NULL,
  os_version    text,
  app_version   text,
  sdk_version   text,
  locale        text,
  timezone      text,
  user_id       text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_app_user ON devices (app_id, user_id) WHERE user_id IS NOT NULL;

CREATE TABLE messages (
  id           uuid PRIMARY KEY,
  app_id       text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  mode         text NOT NULL CHECK (mode IN ('simple', 'template', 'multiple', 'broadcast')),
  push_type    text NOT NULL CHECK (push_type IN ('notification', 'silent')),
  target       jsonb NOT NULL,
  content      jsonb NOT NULL,
  business_id  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  revoked_at   timestamptz
);
CREATE INDEX messages_app_created ON messages (app_id, created_at DESC);
CREATE UNIQUE INDEX messages_business_id ON messages (app_id, business_id) WHERE business_id IS NOT NULL;

-- One row per (device, targeted message): what is pending for a device, in send order (seq),
-- and the per-target ledger that GET /v1/messages/{id} reports.
CREATE TABLE inbox (
  seq           bigserial,
  device_id     uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  message_id    uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  status        text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'delivered', 'expired', 'revoked', 'failed')),
  channel       text,
  expires_at    timestamptz NOT NULL,
  delivered_at  timestamptz,
  PRIMARY KEY (device_id, message_id)
);
CREATE INDEX inbox_pending ON inbox (device_id, seq) WHERE status = 'pending';
CREATE INDEX inbox_message ON inbox (message_id);
