import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths redacted in every log line: secrets must never reach the logs. */
const REDACT = ['secret', '*.secret', 'token', '*.token', 'password', '*.password', 'req.headers["x-mps-signature"]'];

export function createLogger(name: string, level: string): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' } });
}
