/**
 * mps: the command line for business servers and operators.
 *   mps push --device ID | --user ID --title T --body B [--ttl S] [--silent] [--payload JSON]
 *   mps message ID
 * Credentials: MPS_API_URL, MPS_KEY_ID and MPS_KEY_SECRET, or --credentials FILE
 * (default ./data/demo.json, written by `make run`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiRequestError, PushClient, type SimplePush } from './server/client.js';

const USAGE = `usage:
  mps push (--device ID | --user ID) [--title T] [--body B] [--payload JSON] [--ttl SECONDS] [--silent] [--business-id ID]
  mps message ID
options: --credentials FILE (default ./data/demo.json), or MPS_API_URL, MPS_KEY_ID, MPS_KEY_SECRET`;

class UsageError extends Error {}

function clientFrom(file: string | undefined): PushClient {
  const env = process.env;
  if (file === undefined && env.MPS_KEY_ID && env.MPS_KEY_SECRET) {
    return new PushClient({ baseUrl: env.MPS_API_URL ?? 'http://127.0.0.1:8080', keyId: env.MPS_KEY_ID, secret: env.MPS_KEY_SECRET });
  }
  const path = file ?? './data/demo.json';
  if (!existsSync(path)) throw new UsageError(`no credentials: set MPS_KEY_ID and MPS_KEY_SECRET, or pass --credentials FILE`);
  const c = JSON.parse(readFileSync(path, 'utf8')) as { apiUrl: string; keyId: string; secret: string };
  return new PushClient({ baseUrl: env.MPS_API_URL ?? c.apiUrl, keyId: c.keyId, secret: c.secret });
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      device: { type: 'string' },
      user: { type: 'string' },
      title: { type: 'string' },
      body: { type: 'string' },
      payload: { type: 'string' },
      ttl: { type: 'string' },
      silent: { type: 'boolean' },
      'business-id': { type: 'string' },
      credentials: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) throw new UsageError(USAGE);
  const client = clientFrom(values.credentials);
  switch (command) {
    case 'push': {
      if ((values.device === undefined) === (values.user === undefined)) throw new UsageError('give exactly one of --device or --user');
      const push: SimplePush = {
        target: values.device !== undefined ? { device: values.device } : { user: values.user as string },
        ...(values.silent && { pushType: 'silent' as const }),
        ...(values.title !== undefined && { title: values.title }),
        ...(values.body !== undefined && { body: values.body }),
        ...(values.payload !== undefined && { payload: JSON.parse(values.payload) as unknown }),
        ...(values.ttl !== undefined && { ttl: Number(values.ttl) }),
        ...(values['business-id'] !== undefined && { businessId: values['business-id'] }),
      };
      console.log(JSON.stringify(await client.pushSimple(push), null, 2));
      return;
    }
    case 'message': {
      if (rest[0] === undefined) throw new UsageError('usage: mps message ID');
      console.log(JSON.stringify(await client.message(rest[0]), null, 2));
      return;
    }
    default:
      throw new UsageError(`unknown command ${command}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ApiRequestError) console.error(`error ${error.status} ${error.code}: ${error.message}`);
  else if (error instanceof UsageError) console.error(error.message);
  else console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
