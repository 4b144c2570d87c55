import { describe, expect, it } from 'vitest';
import { commonSpec, ConfigError, int, loadConfig, port, str, url } from './config.js';

const spec = {
  API_PORT: port({ default: 8080, desc: 'a TCP port for the push API' }),
  PUBLIC_URL: url({ default: 'http://127.0.0.1:8080', desc: 'the URL devices connect to' }),
  LOG_LEVEL: commonSpec.LOG_LEVEL,
  MAX_BATCH: int({ min: 1, default: 100, desc: 'the largest batch, at least 1' }),
};

function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

/** envalid words its own messages; the line must name the variable, the bad value and what was expected. */
const invalidLine = (name: string, value: string, expected: string) =>
  expect.stringMatching(new RegExp(`^configuration: ${name} is invalid \\(.*"${value}".*\\): expected ${expected}$`));

describe('loadConfig', () => {
  it('applies every default when the environment is empty', () => {
    expect({ ...loadConfig(commonSpec, {}) }).toEqual({
      NATS_URL: 'nats://127.0.0.1:4222',
      NATS_PREFIX: 'mps',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/mps',
      DATA_DIR: './data',
      LOG_LEVEL: 'info',
    });
    expect({ ...loadConfig(spec, {}) }).toEqual({
      API_PORT: 8080,
      PUBLIC_URL: 'http://127.0.0.1:8080',
      LOG_LEVEL: 'info',
      MAX_BATCH: 100,
    });
  });

  it('reads the given environment, parsing numbers', () => {
    const config = loadConfig(spec, {
      API_PORT: '9000',
      PUBLIC_URL: 'https://push.example.com',
      LOG_LEVEL: 'debug',
      MAX_BATCH: '1',
    });
    expect({ ...config }).toEqual({ API_PORT: 9000, PUBLIC_URL: 'https://push.example.com', LOG_LEVEL: 'debug', MAX_BATCH: 1 });
  });

  it.each(['0', '70000', 'http', '80.5'])('refuses the port %j', (value) => {
    const error = configErrorOf(() => loadConfig(spec, { API_PORT: value }));
    expect(error.lines).toEqual([invalidLine('API_PORT', value, 'a TCP port for the push API')]);
  });

  it('takes the comma-separated URLs of a NATS cluster, and refuses a bad one among them', () => {
    const urls = 'nats://127.0.0.1:4231, nats://127.0.0.1:4232,nats://127.0.0.1:4233';
    expect(loadConfig(commonSpec, { NATS_URL: urls }).NATS_URL).toBe('nats://127.0.0.1:4231,nats://127.0.0.1:4232,nats://127.0.0.1:4233');
    const error = configErrorOf(() => loadConfig(commonSpec, { NATS_URL: 'nats://127.0.0.1:4231,localhost' }));
    expect(error.lines).toEqual([invalidLine('NATS_URL', 'localhost', 'a NATS server URL, comma-separated for a cluster')]);
  });

  it.each(['not a url', 'localhost'])('refuses the url %j', (value) => {
    const error = configErrorOf(() => loadConfig(spec, { PUBLIC_URL: value }));
    expect(error.lines).toEqual([invalidLine('PUBLIC_URL', value, 'the URL devices connect to')]);
  });

  it.each(['loud', 'INFO', ''])('refuses %j, which is not among the choices', (value) => {
    const error = configErrorOf(() => loadConfig(spec, { LOG_LEVEL: value }));
    expect(error.lines).toEqual([
      invalidLine('LOG_LEVEL', value, 'one of fatal, error, warn, info, debug, trace, silent'),
    ]);
  });

  it.each(['0', '-5', '2.5', 'ten', ''])('refuses %j for an int() whose minimum is 1', (value) => {
    const error = configErrorOf(() => loadConfig(spec, { MAX_BATCH: value }));
    expect(error.lines).toEqual([
      `configuration: MAX_BATCH is invalid (not an integer >= 1: "${value}"): expected the largest batch, at least 1`,
    ]);
  });

  it('says which required variable is missing', () => {
    const error = configErrorOf(() => loadConfig({ MASTER_KEY: str({ desc: '32 bytes, base64' }) }, {}));
    expect(error.lines).toEqual(['configuration: MASTER_KEY is required: expected 32 bytes, base64']);
  });

  it('reports one line per bad variable, and nothing about the good ones', () => {
    const error = configErrorOf(() =>
      loadConfig(spec, { API_PORT: 'http', PUBLIC_URL: 'nope', LOG_LEVEL: 'loud', MAX_BATCH: '0' }),
    );
    expect(error.lines).toEqual([
      invalidLine('API_PORT', 'http', 'a TCP port for the push API'),
      invalidLine('PUBLIC_URL', 'nope', 'the URL devices connect to'),
      invalidLine('LOG_LEVEL', 'loud', 'one of fatal, error, warn, info, debug, trace, silent'),
      'configuration: MAX_BATCH is invalid (not an integer >= 1: "0"): expected the largest batch, at least 1',
    ]);
    expect(error.name).toBe('ConfigError');
    expect(error.message).toBe(error.lines.join('\n'));

    const partly = configErrorOf(() => loadConfig(spec, { API_PORT: '9000', MAX_BATCH: '0' }));
    expect(partly.lines).toHaveLength(1);
    expect(partly.lines[0]).toMatch(/^configuration: MAX_BATCH /);
  });
});
