/**
 * The kernel limits the socket benches need: the accept backlog cap (net.core.somaxconn, which
 * nats-server uses as its backlog) and the SYN backlog, raised for the run where they are lower and
 * put back afterwards. The ephemeral port range is left alone: the load clients spread their source
 * addresses over 127.0.0.0/8 instead, so no other program on the machine sees a changed range.
 */
import { readFile, writeFile } from 'node:fs/promises';

const WANTED: Record<string, number> = {
  'net/core/somaxconn': 8192,
  'net/ipv4/tcp_max_syn_backlog': 8192,
};

export interface LimitChange {
  setting: string;
  from: string;
  to: string;
}

export interface RaisedLimits {
  /** What was changed (for the result file), or why it could not be. */
  changes: LimitChange[];
  notes: string[];
  restore(): Promise<void>;
}

export async function raiseSocketLimits(log: (line: string) => void): Promise<RaisedLimits> {
  const changes: LimitChange[] = [];
  const notes: string[] = [];
  for (const [setting, wanted] of Object.entries(WANTED)) {
    const path = `/proc/sys/${setting}`;
    const from = (await readFile(path, 'utf8').catch(() => '')).trim();
    if (from === '' || Number(from) >= wanted) continue;
    try {
      await writeFile(path, String(wanted));
      changes.push({ setting: setting.replaceAll('/', '.'), from, to: String(wanted) });
      log(`raised ${setting.replaceAll('/', '.')} from ${from} to ${wanted} for this run`);
    } catch (error) {
      notes.push(`could not raise ${setting.replaceAll('/', '.')} (${from}): ${(error as Error).message}`);
    }
  }
  return {
    changes,
    notes,
    restore: async () => {
      for (const change of changes) {
        await writeFile(`/proc/sys/${change.setting.replaceAll('.', '/')}`, change.from);
        log(`restored ${change.setting} to ${change.from}`);
      }
    },
  };
}
