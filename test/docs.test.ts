/** The documents stay true: every environment variable the code reads is documented. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commonSpec } from '@mps/shared';
import { gatewaySpec } from '@mps/gateway';
import { controlPlaneSpec } from '@mps/control-plane';
import { analyticsSpec } from '@mps/analytics';
import { senderSpec } from '@mps/sender';
import { ROOT } from './support/services.js';

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Variables read outside the config specs: by the scripts, the demo and the command line. */
function readByScriptsAndTools(): string[] {
  const scripts = readdirSync(join(ROOT, 'scripts')).map((f) => read(`scripts/${f}`));
  const fromScripts = scripts.flatMap((text) => [...text.matchAll(/\$\{([A-Z][A-Z0-9_]{3,})[:}-]/g)].map((m) => m[1] as string));
  const tools = ['control-plane/src/demo.ts', 'sdk/src/cli.ts', 'sdk/src/demo-device.ts'].map(read);
  const fromTools = tools.flatMap((text) => [...text.matchAll(/env\.([A-Z][A-Z0-9_]{3,})/g)].map((m) => m[1] as string));
  return [...new Set([...fromScripts, ...fromTools])];
}

describe('documentation', () => {
  const specs = [commonSpec, gatewaySpec, controlPlaneSpec, analyticsSpec, senderSpec].flatMap((spec) => Object.keys(spec));
  const variables = [...new Set([...specs, ...readByScriptsAndTools()])].sort();

  it('finds the variables it checks', () => {
    expect(variables).toEqual(expect.arrayContaining(['NATS_URL', 'GATEWAY_PORT', 'API_PORT', 'CLICKHOUSE_URL', 'GATEWAY_PROCESSES', 'MPS_KEY_ID']));
  });

  it('names every environment variable in docs/operations.md', () => {
    const doc = read('docs/operations.md');
    expect(variables.filter((name) => !doc.includes(`\`${name}\``) && !doc.includes(`\`${name}\`,`))).toEqual([]);
  });

  it("names every service's variable in the README's configuration table", () => {
    const readme = read('README.md');
    expect([...new Set(specs)].filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });
});
