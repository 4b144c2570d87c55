#!/usr/bin/env node
// The `mps` command: runs the compiled CLI (built by `make run` or `npm run build`).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('mps is not built yet: run `npm run build` (or `make run`) in the repository first');
  process.exit(1);
}
const { run } = await import(cli.href);
run(process.argv.slice(2));
