-- Stored message templates: title, body and extras values with {{placeholders}}.
CREATE TABLE templates (
  app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  name        text NOT NULL,
  title       text,
  body        text,
  extras      jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (app_id, name)
);

-- A multiple push is one task of many messages (one per target, each rendered with its values).
ALTER TABLE messages ADD COLUMN task_id uuid;
ALTER TABLE messages DROP CONSTRAINT messages_mode_check;
ALTER TABLE messages ADD CONSTRAINT messages_mode_check CHECK (mode IN ('simple', 'template', 'multiple', 'broadcast'));
CREATE INDEX messages_task ON messages (task_id) WHERE task_id IS NOT NULL;
