/**
 * Group commit: items submitted while earlier groups are being written wait and go together in the
 * next group, so that under load one statement (and one WAL flush) carries many items, while a lone
 * item waits no longer than the current turn of the event loop.
 */
export interface GroupCommitOptions {
  /** Items per group at most. */
  maxItems: number;
  /** Groups being written at once. */
  concurrency: number;
}

/**
 * `write` answers each item of a group, in order, with its result or the error for that item alone;
 * when `write` throws, every item of the group gets that error.
 */
export function groupCommit<I, O>(write: (items: I[]) => Promise<(O | Error)[]>, options: GroupCommitOptions): (item: I) => Promise<O> {
  const queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  let writing = 0;
  let scheduled = false;

  function schedule(): void {
    if (scheduled || writing >= options.concurrency || queue.length === 0) return;
    scheduled = true;
    setImmediate(flush);
  }

  function flush(): void {
    scheduled = false;
    const group = queue.splice(0, options.maxItems);
    if (group.length === 0) return;
    writing++;
    write(group.map((g) => g.item))
      .then(
        (results) => group.forEach((g, i) => settle(g, i < results.length ? (results[i] as O | Error) : new Error('group commit: no result for an item'))),
        (error: unknown) => group.forEach((g) => g.reject(error)),
      )
      .finally(() => {
        writing--;
        schedule();
      });
    schedule();
  }

  function settle(g: (typeof queue)[number], result: O | Error): void {
    if (result instanceof Error) g.reject(result);
    else g.resolve(result);
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      schedule();
    });
}
