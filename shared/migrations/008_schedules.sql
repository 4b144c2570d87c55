-- Scheduled pushes: the push request, kept until it fires. A push "at a local time" becomes one row
-- per time zone of the target devices, all under one schedule id.
CREATE TABLE scheduled_pushes (
  id           uuid PRIMARY KEY,
  schedule_id  uuid NOT NULL,
  app_id       text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  kind         text NOT NULL CHECK (kind IN ('simple', 'template', 'multiple', 'broadcast')),
  body         jsonb NOT NULL,
  time_zone    text,
  fire_at      timestamptz NOT NULL,
  status       text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'firing', 'fired', 'failed', 'cancelled')),
  claimed_at   timestamptz,
  result       jsonb,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scheduled_pushes_due ON scheduled_pushes (fire_at) WHERE status = 'waiting';
CREATE INDEX scheduled_pushes_schedule ON scheduled_pushes (schedule_id);
