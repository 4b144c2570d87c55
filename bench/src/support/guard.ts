/**
 * Bounds a bench run: `check()` throws once BENCH_TIMEOUT_S has passed or after Ctrl-C / SIGTERM, so
 * that the run unwinds through its clean-up (databases, NATS streams, processes, system limits); a
 * second signal, or a clean-up that hangs two minutes past the timeout, ends the process at once.
 */
export function guardRun(name: string, timeoutS: number): () => void {
  const deadline = Date.now() + timeoutS * 1000;
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) {
        process.stderr.write(`${name} bench: interrupted twice, exiting\n`);
        process.exit(130);
      }
      interrupted = true;
      process.stderr.write(`${name} bench: interrupted; cleaning up (again to exit at once)\n`);
    });
  }
  setTimeout(() => {
    process.stderr.write(`${name} bench: past BENCH_TIMEOUT_S and clean-up has not finished; exiting\n`);
    process.exit(2);
  }, (timeoutS + 120) * 1000).unref();
  return () => {
    if (interrupted) throw new Error(`${name} bench interrupted`);
    if (Date.now() > deadline) throw new Error(`BENCH_TIMEOUT_S (${timeoutS} s) passed`);
  };
}
