-- Where an app wants delivery results POSTed (NULL: no callback).
ALTER TABLE apps ADD COLUMN receipt_url text;
-- The expiry sweep looks for pending rows past their expiry.
CREATE INDEX inbox_pending_expiry ON inbox (expires_at) WHERE status = 'pending';
CREATE INDEX messages_expiry ON messages (expires_at);
