-- Requests per second an app may make on each control-plane process (NULL: the configured default).
ALTER TABLE apps ADD COLUMN rate_limit_per_s integer CHECK (rate_limit_per_s > 0);
