/**
 * Environment configuration: each service declares its variables with envalid validators;
 * a bad or missing value stops start-up with one line per variable.
 */
import { existsSync } from 'node:fs';
import { bool, cleanEnv, EnvError, EnvMissingError, makeValidator, port, str, url } from 'envalid';

export { bool, makeValidator, port, str, url };

/** An integer variable with a lower bound, so that a value that cannot work stops start-up. */
export function int(options: { min: number; max?: number; default: number; desc: string }) {
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return makeValidator<number>((input) => {
    const value = Number(input);
    if (!Number.isInteger(value) || value < options.min || value > max) {
      throw new EnvError(`not an integer ${options.max === undefined ? `>= ${options.min}` : `from ${options.min} to ${max}`}: "${input}"`);
    }
    return value;
  })({ default: options.default, desc: options.desc });
}

type Spec = Parameters<typeof cleanEnv>[1];

export class ConfigError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Loads ./.env (never overriding the real environment) and validates `spec`. */
export function loadConfig<S extends Spec>(spec: S, env: NodeJS.ProcessEnv = process.env) {
  if (env === process.env && existsSync('.env')) process.loadEnvFile('.env');
  return cleanEnv(env, spec, {
    reporter: ({ errors }) => {
      const lines = Object.entries(errors).map(([name, error]) => {
        const expected = (spec as Record<string, { desc?: string }>)[name]?.desc ?? 'a valid value';
        return error instanceof EnvMissingError
          ? `configuration: ${name} is required: expected ${expected}`
          : `configuration: ${name} is invalid (${(error as Error).message}): expected ${expected}`;
      });
      if (lines.length > 0) throw new ConfigError(lines);
    },
  });
}

/** One or more server URLs separated by commas (the nodes of a NATS cluster), each a valid URL. */
const urlList = makeValidator<string>((input) => {
  const urls = input.split(',').map((u) => u.trim());
  for (const u of urls) {
    if (!URL.canParse(u)) throw new EnvError(`Invalid url: "${u}" in "${input}"`);
  }
  return urls.join(',');
});

/** Variables every service reads. */
export const commonSpec = {
  NATS_URL: urlList({ default: 'nats://127.0.0.1:4222', desc: 'a NATS server URL, comma-separated for a cluster' }),
  NATS_PREFIX: str({ default: 'mps', desc: 'a lower-case letter then lower-case letters or digits (at most 32): namespaces subjects, streams and buckets' }),
  DATABASE_URL: url({ default: 'postgres://postgres@127.0.0.1:5432/mps', desc: 'a PostgreSQL connection URL' }),
  DATA_DIR: str({ default: './data', desc: 'a folder for local state (demo credentials, chDB files)' }),
  LOG_LEVEL: str({
    default: 'info',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    desc: 'one of fatal, error, warn, info, debug, trace, silent',
  }),
};

/** The key that seals secrets at rest, for every service that reads or writes them. */
export const masterKeySpec = {
  MASTER_KEY: str({
    default: '',
    desc: '32 random bytes, base64, sealing secrets at rest (empty: kept in DATA_DIR/master.key, created on first start)',
  }),
};

/** Runs a service's main, printing configuration errors as one line each and exiting non-zero. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
    } else {
      process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exit(1);
  }
}
