/**
 * Browser tests: the console built from its sources with Vite, and Debian's chromium driven by
 * playwright-core (headless, a fresh profile, no background networking: the machine has no network).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { ROOT } from './services.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'test', 'artifacts', 'console');

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Builds the console into a new folder (the sources as they are now, not an older dist/). */
export async function buildConsole(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mps-console-build-'));
  await build({
    root: join(ROOT, 'console'),
    configFile: join(ROOT, 'console', 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: dir, emptyOutDir: true },
  });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  /** Script errors, CSP refusals and failed asset or server requests the page saw: a test expects none. */
  problems: string[];
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

/** A browser whose screenshots go to `artifacts` (emptied first: only this run's). */
export async function startBrowser(artifacts: string = ARTIFACTS): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does it as root)`);
  const profile = await mkdtemp(join(tmpdir(), 'mps-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 860 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('console', (message) => {
    // A 4xx answer of the API is logged by the browser too; those are checked through the page itself.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource: the server responded with a status of 4')) {
      problems.push(`console: ${message.text()}`);
    }
  });
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (response.status() >= 500 || (response.status() >= 400 && !path.startsWith('/v1/') && !path.startsWith('/console/api/'))) {
      problems.push(`${response.status()} ${path}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // This run's screenshots only: none left from an earlier run with other page names.
  await rm(artifacts, { recursive: true, force: true });
  await mkdir(artifacts, { recursive: true });
  return {
    context,
    page,
    problems,
    screenshot: async (name) => {
      const path = join(artifacts, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
