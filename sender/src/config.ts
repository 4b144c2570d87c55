import { commonSpec, int, loadConfig, makeValidator, masterKeySpec, str } from '@mps/shared';
import { parseRateLimits } from './rate.js';

const rateLimits = makeValidator(parseRateLimits);

export const senderSpec = {
  ...commonSpec,
  ...masterKeySpec,
  SENDER_BATCH: int({ min: 1, max: 1000, default: 200, desc: 'jobs taken from the work queue at a time' }),
  SENDER_MAX_ATTEMPTS: int({ min: 1, default: 8, desc: 'tries of a retryable vendor error before the send counts as failed' }),
  SENDER_ACK_WAIT_MS: int({
    min: 1000,
    default: 30_000,
    desc: 'ms a taken job stays with a sender that stopped answering (crashed) before another sender gets it',
  }),
  SENDER_RATE_LIMITS: rateLimits({ default: {}, desc: 'sends per second per vendor for this process, e.g. "apns=2000,fcm=500" (empty: no limit)' }),
  SENDER_PRESENCE_TIMEOUT_MS: int({ min: 10, default: 500, desc: 'how long the "is this device connected?" question waits for a gateway, in ms' }),
  // Endpoints: the vendors' own unless set (a proxy, a regional host, or a local fake in tests).
  APNS_ORIGIN: str({ default: '', desc: 'https://host:port for APNs instead of api(.sandbox).push.apple.com' }),
  FCM_ORIGIN: str({ default: '', desc: 'https://host:port that every FCM and Google OAuth connection goes to (empty: the real hosts)' }),
  HUAWEI_OAUTH_URL: str({ default: 'https://oauth-login.cloud.huawei.com/oauth2/v3/token', desc: 'the Huawei OAuth token URL' }),
  HUAWEI_PUSH_ORIGIN: str({ default: 'https://push-api.cloud.huawei.com', desc: 'the Huawei Push Kit origin' }),
  XIAOMI_ORIGIN: str({ default: 'https://api.xmpush.xiaomi.com', desc: 'the MiPush origin (a regional host for apps outside China)' }),
  VENDOR_CA_FILE: str({ default: '', desc: 'a PEM file of extra CA certificates to trust for vendor endpoints (empty: the system roots)' }),
};

export type SenderConfig = ReturnType<typeof loadSenderConfig>;

export function loadSenderConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(senderSpec, env);
}
