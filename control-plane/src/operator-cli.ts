/**
 * Console operators from the command line: the way the first operator is made, and how accounts
 * and memberships are managed outside the console (docs/console.md).
 *
 *   node control-plane/dist/operator-cli.js create EMAIL [--app APP]... [--password-stdin]
 *   node control-plane/dist/operator-cli.js password EMAIL [--password-stdin]
 *   node control-plane/dist/operator-cli.js add-app EMAIL APP | remove-app EMAIL APP
 *   node control-plane/dist/operator-cli.js disable EMAIL | enable EMAIL | list
 *   node control-plane/dist/operator-cli.js bootstrap      (make run: the demo operator)
 *
 * Without --password-stdin a random password is made and printed once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDb, migrate, runMain, type Db } from '@mps/shared';
import { loadControlPlaneConfig } from './config.js';
import { OperatorError, OperatorStore } from './operators.js';
import { randomPassword } from './passwords.js';

const USAGE = `usage: operator-cli <command>
  create EMAIL [--app APP]... [--password-stdin]   a new operator, member of the apps given
  password EMAIL [--password-stdin]                a new password (signs the operator out everywhere)
  add-app EMAIL APP / remove-app EMAIL APP         membership of an app
  disable EMAIL / enable EMAIL                     an account that cannot sign in (its sessions end)
  list                                             operators and their apps
  bootstrap                                        what make run does: CONSOLE_ADMIN_EMAIL (admin@localhost), member of the demo app`;

class UsageError extends Error {}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** The password given on stdin, or a new random one that is printed once. */
async function passwordFrom(fromStdin: boolean): Promise<{ password: string; generated: boolean }> {
  return fromStdin ? { password: await readStdin(), generated: false } : { password: randomPassword(), generated: true };
}

async function operatorId(store: OperatorStore, email: string): Promise<string> {
  const found = await store.find(email);
  if (!found) throw new OperatorError('OPERATOR_NOT_FOUND');
  return found.id;
}

/** make run: one operator for the demo app, its generated password kept beside the demo's key. */
async function bootstrap(store: OperatorStore, dataDir: string): Promise<void> {
  const email = process.env.CONSOLE_ADMIN_EMAIL || 'admin@localhost';
  const file = join(dataDir, 'console-admin.json');
  let operator = await store.find(email);
  if (!operator) {
    const given = process.env.CONSOLE_ADMIN_PASSWORD;
    const password = given || randomPassword();
    operator = await store.create(email, password);
    if (!given) await writeFile(file, `${JSON.stringify({ email: operator.email, password }, null, 2)}\n`, { mode: 0o600 });
  }
  const demo = join(dataDir, 'demo.json');
  if (existsSync(demo)) await store.addMember(operator.id, (JSON.parse(readFileSync(demo, 'utf8')) as { app: string }).app);
  const where = existsSync(file) ? `password in ${file}` : 'with the password CONSOLE_ADMIN_PASSWORD gave it';
  console.log(`${operator.email} (${where})`);
}

async function run(db: Db, args: string[], dataDir: string): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { app: { type: 'string', multiple: true }, 'password-stdin': { type: 'boolean' } } });
  } catch (cause) {
    throw new UsageError((cause as Error).message, { cause });
  }
  const { values, positionals } = parsed;
  const [command, email, app] = positionals;
  const store = new OperatorStore(db);
  const need = (value: string | undefined, what: string): string => {
    if (!value) throw new UsageError(`${command} needs ${what}`);
    return value;
  };
  switch (command) {
    case 'create': {
      const { password, generated } = await passwordFrom(values['password-stdin'] === true);
      const operator = await store.create(need(email, 'an email'), password);
      for (const appId of values.app ?? []) await store.addMember(operator.id, appId);
      console.log(`created operator ${operator.email}${generated ? `; password (shown once): ${password}` : ''}`);
      return;
    }
    case 'password': {
      const { password, generated } = await passwordFrom(values['password-stdin'] === true);
      await store.setPassword(need(email, 'an email'), password);
      console.log(`new password set${generated ? ` (shown once): ${password}` : ''}; every session of this operator has ended`);
      return;
    }
    case 'add-app':
      await store.addMember(await operatorId(store, need(email, 'an email')), need(app, 'an app id'));
      console.log(`${email} is a member of ${app}`);
      return;
    case 'remove-app':
      if (!(await store.removeMember(await operatorId(store, need(email, 'an email')), need(app, 'an app id')))) {
        console.log(`${email} was not a member of ${app}`);
      } else {
        console.log(`${email} is no longer a member of ${app}`);
      }
      return;
    case 'disable':
    case 'enable':
      await store.setDisabled(need(email, 'an email'), command === 'disable');
      console.log(`${email} ${command}d`);
      return;
    case 'list':
      for (const o of await store.list()) console.log(`${o.email}${o.disabled ? ' (disabled)' : ''}\t${o.apps.join(' ') || '-'}`);
      return;
    case 'bootstrap':
      return bootstrap(store, dataDir);
    default:
      throw new UsageError(command === undefined ? 'a command is needed' : `unknown command ${command}`);
  }
}

await runMain(async () => {
  const config = loadControlPlaneConfig();
  const db = createDb(config.DATABASE_URL, 2);
  try {
    await migrate(db);
    await run(db, process.argv.slice(2), config.DATA_DIR);
  } catch (error) {
    if (error instanceof UsageError || error instanceof OperatorError) {
      process.stderr.write(`${error instanceof OperatorError ? `${error.code}: ` : ''}${error.message}\n${error instanceof UsageError ? `${USAGE}\n` : ''}`);
      process.exitCode = 2;
    } else {
      throw error;
    }
  } finally {
    await db.end();
  }
});
