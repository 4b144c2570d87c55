/** `npm run bench -- NAME`: runs the main() of bench/src/NAME.ts. */
import { readdir } from 'node:fs/promises';

const name = process.argv[2] ?? '';
const benches = (await readdir(new URL('.', import.meta.url)))
  .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && file !== 'run.ts')
  .map((file) => file.slice(0, -3));
if (!benches.includes(name)) {
  process.stderr.write(`usage: npm run bench -- NAME, where NAME is one of: ${benches.join(', ')}\n`);
  process.exit(2);
}
const bench = (await import(`./${name}.js`)) as { main(): Promise<void> };
await bench.main();
