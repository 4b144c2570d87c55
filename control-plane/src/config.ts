import { bool, commonSpec, masterKeySpec, int, loadConfig, port, str } from '@mps/shared';

export const controlPlaneSpec = {
  ...commonSpec,
  API_HOST: str({ default: '0.0.0.0', desc: 'the address the HTTP API listens on' }),
  API_PORT: port({ default: 8080, desc: 'the HTTP API port' }),
  ...masterKeySpec,
  DEFAULT_TTL_S: int({ min: 1, default: 86_400, desc: 'validity period of a message that gives none, in seconds' }),
  MAX_TTL_S: int({ min: 1, default: 7 * 86_400, desc: 'the longest validity period a message may ask for, in seconds' }),
  RATE_LIMIT_PER_S: int({ min: 1, default: 2000, desc: "requests per second one app may make on one control-plane process (apps.rate_limit_per_s overrides)" }),
  RECEIPT_HORIZON_S: int({ min: 60, default: 24 * 3600, desc: 'how long a failing receipt callback is retried (backoff up to 5 minutes) before results are dropped' }),
  EXPIRY_SWEEP_MS: int({ min: 100, default: 10_000, desc: 'how often expired targets are marked (and reported) as expired' }),
  RETENTION_DAYS: int({ min: 1, default: 7, desc: 'days a message and its per-target results are kept after it expires' }),
  KEY_CACHE_MS: int({ min: 0, default: 10_000, desc: 'how long an API key lookup is cached (a disabled key stops working within this)' }),
  CONSOLE_DIR: str({ default: '', desc: 'the built web console (empty: console/dist/public of this checkout)' }),
  CONSOLE_SESSION_TTL_S: int({ min: 60, max: 30 * 86_400, default: 12 * 3600, desc: 'how long a console session lasts after signing in, in seconds' }),
  CONSOLE_COOKIE_SECURE: bool({
    default: true,
    desc: 'true or false: mark the session cookie Secure (false only for plain-http console access from a host other than localhost)',
  }),
  CONSOLE_SIGN_INS_PER_MINUTE: int({ min: 1, default: 20, desc: 'console sign-in attempts one address may make a minute on one process' }),
};

export type ControlPlaneConfig = ReturnType<typeof loadControlPlaneConfig>;

export function loadControlPlaneConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(controlPlaneSpec, env);
}
