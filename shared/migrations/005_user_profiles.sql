-- Tags and attributes of a user (set by the business server), shared by all the user's devices:
-- conditions see the union of a device's own tags and its user's, and the user's attribute
-- values over the device's own.
CREATE TABLE user_profiles (
  app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  user_id     text NOT NULL,
  tags        text[] NOT NULL DEFAULT '{}',
  attributes  jsonb  NOT NULL DEFAULT '{}',
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (app_id, user_id)
);
CREATE INDEX user_profiles_tags ON user_profiles USING gin (tags);
