/**
 * The reliability and security suite (test/reliability, issue #10) at full size: runs its vitest
 * files one after another with RELIABILITY_SCALE=full, then gathers what each scenario recorded
 * (injected faults and inputs; messages_checked, lost, duplicates_shown, expired_shown, crashes)
 * into bench/results/reliability.json, with each file's pass or fail. Loopback only; bounded by
 * RELIABILITY_TIMEOUT_S. `make soak` runs it (scripts/soak.sh). It runs the test tree, so it runs
 * from source only.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { int, loadConfig, str } from '@mps/shared';
import { gitCommit, machineInfo, resultsDir, writeResult } from './support/results.js';
import { ROOT } from './support/processes.js';

const spec = {
  RELIABILITY_SCALE: str({ choices: ['full', 'ci'], default: 'full', desc: 'full (make soak) or ci (the size make test runs)' }),
  RELIABILITY_TIMEOUT_S: int({ min: 60, default: 3 * 3600, desc: 'the whole run is stopped after this many seconds' }),
  RELIABILITY_FILTER: str({ default: '', desc: 'only these test files, comma-separated (e.g. frames,tokens; empty: all of test/reliability); their scenarios replace those in reliability.json' }),
};

interface VitestReport {
  testResults: { name: string; status: string; assertionResults: { title: string; status: string; failureMessages: string[] }[] }[];
}

function runVitest(env: NodeJS.ProcessEnv, reportFile: string, filter: string, timeoutS: number): Promise<number | null> {
  const files = filter === '' ? ['test/reliability'] : filter.split(',').map((f) => (f.includes('/') ? f : `test/reliability/${f}`));
  const args = ['vitest', 'run', ...files, '--fileParallelism=false', '--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`];
  const child = spawn('npx', args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  const timer = setTimeout(() => {
    process.stderr.write(`reliability: stopping the run after ${timeoutS} s\n`);
    // Its own process group: vitest's workers and the services they started go with it.
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    setTimeout(() => child.pid !== undefined && process.kill(-child.pid, 'SIGKILL'), 10_000).unref();
  }, timeoutS * 1000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
}

interface Run {
  date: string;
  filter: string;
  seconds: number;
  passed: boolean;
}

interface Previous {
  runs?: Run[];
  scenarios: Record<string, unknown>;
  tests: { file: string; test: string; status: string; failure?: string }[];
}

async function readPrevious(): Promise<Previous | undefined> {
  try {
    return JSON.parse(await readFile(join(resultsDir(), 'reliability.json'), 'utf8')) as Previous;
  } catch {
    return undefined;
  }
}

export async function main(): Promise<void> {
  const config = loadConfig(spec);
  const say = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const dir = await mkdtemp(join(tmpdir(), 'mps-reliability-run-'));
  const reportFile = join(dir, 'vitest.json');
  const started = Date.now();
  const machine = machineInfo();
  say(`reliability suite at ${config.RELIABILITY_SCALE} size, results in ${dir}`);
  const code = await runVitest(
    { ...process.env, RELIABILITY_SCALE: config.RELIABILITY_SCALE, RELIABILITY_RESULTS_DIR: join(dir, 'scenarios') },
    reportFile,
    config.RELIABILITY_FILTER,
    config.RELIABILITY_TIMEOUT_S,
  );

  const scenarios: Record<string, unknown> = {};
  const files = await readdir(join(dir, 'scenarios')).catch(() => [] as string[]);
  for (const file of files.filter((f) => f.endsWith('.json')).sort()) {
    scenarios[file.slice(0, -5)] = JSON.parse(await readFile(join(dir, 'scenarios', file), 'utf8'));
  }
  const report = (await readFile(reportFile, 'utf8').then((t) => JSON.parse(t) as VitestReport).catch(() => undefined)) ?? { testResults: [] };
  const tests = report.testResults.flatMap((file) =>
    file.assertionResults.map((a) => ({
      file: file.name.replace(ROOT, ''),
      test: a.title,
      status: a.status,
      ...(a.failureMessages.length > 0 && { failure: a.failureMessages.join('\n').split('\n').slice(0, 6).join('\n') }),
    })),
  );
  // A filtered run updates its own scenarios and tests in the results and keeps the others'.
  const previous = config.RELIABILITY_FILTER === '' ? undefined : await readPrevious();
  if (previous) {
    const ran = new Set(tests.map((t) => t.file));
    for (const [key, value] of Object.entries(previous.scenarios)) if (!(key in scenarios)) scenarios[key] = value;
    tests.unshift(...previous.tests.filter((t) => !ran.has(t.file)));
  }
  const totals = Object.values(scenarios).reduce<Record<string, number>>((sum, s) => {
    for (const key of ['messages_checked', 'lost', 'duplicates_shown', 'expired_shown', 'crashes']) {
      sum[key] = (sum[key] ?? 0) + Number((s as Record<string, unknown>)[key] ?? 0);
    }
    return sum;
  }, {});
  const passed = code === 0 && tests.every((t) => t.status !== 'failed');
  const run: Run = { date: new Date().toISOString(), filter: config.RELIABILITY_FILTER || 'test/reliability', seconds: Math.round((Date.now() - started) / 1000), passed: code === 0 };
  const result = {
    name: 'reliability',
    date: run.date,
    commit: gitCommit(),
    machine,
    params: { scale: config.RELIABILITY_SCALE, filter: config.RELIABILITY_FILTER || 'test/reliability' },
    passed,
    /** The runs whose scenarios these are: a filtered run adds itself to the earlier ones. */
    runs: [...(previous?.runs ?? []), run],
    totals,
    scenarios,
    tests,
    notes:
      'Each scenario of issue #10 as a test in test/reliability (docs/reliability.md says what each injects and proves). ' +
      'messages_checked counts messages, or requests and frames for the hostile-input scenarios; lost = due or accepted and never delivered ' +
      'with no gap or expiry record; crashes = service processes that died without the test killing them.',
  };
  const path = await writeResult('reliability', result);
  say(`reliability: ${code === 0 ? 'passed' : `FAILED (exit ${code})`}, totals ${JSON.stringify(totals)}; ${path}`);
  await rm(dir, { recursive: true, force: true });
  if (code !== 0) process.exitCode = 1;
}
