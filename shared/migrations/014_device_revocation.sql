-- When the business server revoked the device's credentials (POST /v1/devices/{id}/revoke): its
-- secret no longer authenticates it, nor does a connect token issued before this time.
ALTER TABLE devices ADD COLUMN revoked_at timestamptz;
