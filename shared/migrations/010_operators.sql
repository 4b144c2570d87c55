-- Operators: the people who sign in to the web console. An operator sees the apps they are a
-- member of, through the same /v1 API business servers use (docs/console.md).
CREATE TABLE operators (
  id               uuid PRIMARY KEY,
  email            text NOT NULL CHECK (email = lower(email)),
  -- scrypt, with its parameters and salt: 'scrypt$N$r$p$salt$hash' (base64url).
  password_hash    text NOT NULL,
  -- Consecutive failed sign-ins, and when the last one was: the account is throttled after a few.
  failed_sign_ins  integer NOT NULL DEFAULT 0,
  last_failed_at   timestamptz,
  disabled_at      timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX operators_email ON operators (email);

-- Console sessions. The cookie holds 32 random bytes; only their SHA-256 is stored, so a copy of
-- the table does not open anyone's session.
CREATE TABLE operator_sessions (
  token_hash   bytea PRIMARY KEY,
  operator_id  uuid NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_expires ON operator_sessions (expires_at);

-- Which operators may act on which apps.
CREATE TABLE app_members (
  operator_id  uuid NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
  app_id       text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (operator_id, app_id)
);
CREATE INDEX app_members_app ON app_members (app_id);
