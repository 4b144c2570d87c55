/** Messages: the list with filters, and one message's funnel, per-channel results, targets and revoke. */
import { useState } from 'preact/hooks';
import { v1, type V1 } from '../api';
import { Funnel } from '../chart';
import { Field, FormError, text, useSubmit, UUID, type Errors } from '../form';
import { go, href } from '../route';
import { ConfirmButton, Failed, Loading, Section, useLoad, usePoll, when } from '../widgets';

type Counts = Record<'targeted' | 'pending' | 'delivered' | 'expired' | 'revoked' | 'failed', number>;

interface Summary {
  id: string;
  mode: string;
  pushType: string;
  taskId: string | null;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  counts: Counts;
}

interface Status extends Summary {
  targets: { device: string; status: string; channel: string | null; deliveredAt: string | null }[];
  vendor: {
    counts: Record<string, number>;
    sends: { device: string; vendor: string; status: string; reason: string | null; attempts: number; updatedAt: string }[];
  };
}

interface FunnelReport {
  targeted: number;
  counts: Record<string, number>;
  rates: { delivery: number | null; display: number | null; open: number | null };
  channels: Record<string, Record<string, number>>;
}

const KINDS = ['sent', 'delivered', 'arrived', 'opened', 'ignored', 'expired', 'revoked', 'failed'];

function MessageView({ api, app, id }: { api: V1; app: string; id: string }) {
  const status = useLoad(() => api.get<Status>(`/messages/${id}`), [app, id]);
  const [funnel, setFunnel] = useState<{ report?: FunnelReport; error?: string }>({});
  const revoke = useSubmit({ fields: [] });
  const pending = (status.data?.counts.pending ?? 0) > 0;
  usePoll(
    () => {
      api.get<FunnelReport>(`/reports/messages/${id}`).then(
        (report) => setFunnel({ report }),
        (error: Error) => setFunnel({ error: error.message }),
      );
      if (pending) status.reload();
    },
    3000,
    true,
    [id, pending],
  );

  if (status.error) return <Failed error={status.error} />;
  if (!status.data) return <Loading what="the message" />;
  const m = status.data;
  const report = funnel.report;
  return (
    <>
      <Section
        title={`Message ${m.id}`}
        actions={
          m.revokedAt === null && (
            <ConfirmButton
              label="Revoke"
              confirm="Revoke: stop delivery and withdraw it"
              class="danger"
              onConfirm={() =>
                void revoke.run(
                  () => ({}),
                  async () => {
                    await api.post(`/messages/${m.id}/revoke`);
                    status.reload();
                  },
                )
              }
            />
          )
        }
      >
        <dl class="facts">
          <div><dt>Kind</dt><dd>{m.mode}, {m.pushType}</dd></div>
          <div><dt>Created</dt><dd>{when(m.createdAt)}</dd></div>
          <div><dt>Valid until</dt><dd>{when(m.expiresAt)}</dd></div>
          <div><dt>Revoked</dt><dd data-revoked>{m.revokedAt ? when(m.revokedAt) : 'no'}</dd></div>
          {m.taskId && <div><dt>Task</dt><dd><code>{m.taskId}</code></dd></div>}
        </dl>
        <ul class="counts" data-counts>
          {Object.entries(m.counts).map(([k, n]) => (
            <li key={k} data-count={k}>
              <strong>{n}</strong> {k}
            </li>
          ))}
        </ul>
        <FormError errors={revoke.errors} />
      </Section>
      <Section title="Funnel">
        {funnel.error && <Failed error={funnel.error} />}
        {!report && !funnel.error && <Loading what="the funnel" />}
        {report && (
          <>
            <Funnel
              steps={[
                { name: 'targeted', count: report.targeted },
                { name: 'delivered', count: report.counts.delivered ?? 0, rate: report.rates.delivery },
                { name: 'arrived', count: report.counts.arrived ?? 0, rate: report.rates.display },
                { name: 'opened', count: report.counts.opened ?? 0, rate: report.rates.open },
              ]}
            />
            <h3>By channel</h3>
            {Object.keys(report.channels).length === 0 ? (
              <p class="muted">No events yet.</p>
            ) : (
              <table class="list" data-table="channels">
                <thead>
                  <tr>
                    <th>Channel</th>
                    {KINDS.map((k) => (
                      <th key={k}>{k}</th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {Object.entries(report.channels).map(([channel, counts]) => (
                    <tr key={channel} data-channel={channel}>
                      <td>{channel}</td>
                      {KINDS.map((k) => (
                        <td key={k} data-kind={k}>{counts[k] ?? 0}</td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </Section>
      <Section title="Targets">
        {m.targets.length === 0 ? (
          <p class="muted">{m.mode === 'broadcast' ? 'A broadcast keeps no per-device rows: see the funnel.' : 'No devices.'}</p>
        ) : (
          <table class="list" data-table="targets">
            <thead>
              <tr><th>Device</th><th>Status</th><th>Channel</th><th>Delivered</th></tr>
            </thead>
            <tbody>
              {m.targets.map((t) => (
                <tr key={t.device}>
                  <td><a href={href(app, 'devices', undefined, { q: t.device })}><code>{t.device}</code></a></td>
                  <td><span class={`badge ${t.status}`}>{t.status}</span></td>
                  <td>{t.channel ?? '–'}</td>
                  <td>{when(t.deliveredAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {m.vendor.sends.length > 0 && (
          <>
            <h3>Vendor sends</h3>
            <table class="list" data-table="vendor-sends">
              <thead>
                <tr><th>Device</th><th>Vendor</th><th>Status</th><th>Reason</th><th>Attempts</th></tr>
              </thead>
              <tbody>
                {m.vendor.sends.map((s) => (
                  <tr key={s.device}>
                    <td><code>{s.device}</code></td>
                    <td>{s.vendor}</td>
                    <td><span class={`badge ${s.status}`}>{s.status}</span></td>
                    <td>{s.reason ?? '–'}</td>
                    <td>{s.attempts}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Section>
    </>
  );
}

function MessageList({ api, app, query }: { api: V1; app: string; query: URLSearchParams }) {
  const [mode, setMode] = useState(query.get('mode') ?? '');
  const [since, setSince] = useState(query.get('since') ?? '');
  const [until, setUntil] = useState(query.get('until') ?? '');
  const [find, setFind] = useState('');
  const [pages, setPages] = useState<(string | undefined)[]>([undefined]);
  const filters = useSubmit({ fields: ['since', 'until', 'find'] });
  const before = pages[pages.length - 1];
  const list = useLoad(
    () =>
      api.get<{ messages: Summary[]; next: string | null }>('/messages', {
        limit: '25',
        mode: query.get('mode') ?? undefined,
        since: query.get('since') ? new Date(query.get('since') as string).toISOString() : undefined,
        until: query.get('until') ? new Date(query.get('until') as string).toISOString() : undefined,
        before,
      }),
    [app, query.toString(), before],
  );

  const check = (): Errors => {
    const e: Errors = {};
    if (since && until && new Date(since) >= new Date(until)) e.until = 'must be after "since"';
    return e;
  };

  return (
    <>
      <Section title="Find a message">
        <form
          class="inline-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void filters.run(
              (): Errors => (UUID.test(find.trim()) ? {} : { find: 'a message id is a UUID' }),
              async () => go(href(app, 'messages', find.trim())),
            );
          }}
        >
          <Field label="Message id" name="find" errors={filters.errors}>
            <input name="find" value={find} onInput={text(setFind)} placeholder="0190a6f3-…" />
          </Field>
          <button type="submit">Open</button>
        </form>
      </Section>
      <Section title="Messages">
        <form
          class="inline-form filters"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void filters.run(check, async () => {
              setPages([undefined]);
              go(href(app, 'messages', undefined, Object.fromEntries(Object.entries({ mode, since, until }).filter(([, v]) => v !== ''))));
            });
          }}
        >
          <Field label="Kind" name="mode" errors={filters.errors}>
            <select name="mode" value={mode} onChange={(e) => setMode((e.currentTarget as HTMLSelectElement).value)}>
              <option value="">all</option>
              <option value="simple">simple</option>
              <option value="template">template</option>
              <option value="multiple">multiple</option>
              <option value="broadcast">broadcast</option>
            </select>
          </Field>
          <Field label="Since" name="since" errors={filters.errors}>
            <input name="since" type="datetime-local" value={since} onInput={text(setSince)} />
          </Field>
          <Field label="Until" name="until" errors={filters.errors}>
            <input name="until" type="datetime-local" value={until} onInput={text(setUntil)} />
          </Field>
          <button type="submit">Filter</button>
          <FormError errors={filters.errors} />
        </form>
        {list.error && <Failed error={list.error} />}
        {list.loading && !list.data && <Loading what="messages" />}
        {list.data && list.data.messages.length === 0 && <p class="muted">No messages match.</p>}
        {list.data && list.data.messages.length > 0 && (
          <table class="list" data-table="messages">
            <thead>
              <tr><th>Message</th><th>Kind</th><th>Created</th><th>Targeted</th><th>Delivered</th><th>Pending</th><th>Expired</th><th /></tr>
            </thead>
            <tbody>
              {list.data.messages.map((m) => (
                <tr key={m.id} data-message={m.id}>
                  <td><a href={href(app, 'messages', m.id)}><code>{m.id.slice(0, 13)}…</code></a></td>
                  <td>{m.mode}{m.pushType === 'silent' ? ' (silent)' : ''}</td>
                  <td>{when(m.createdAt)}</td>
                  <td>{m.counts.targeted}</td>
                  <td>{m.counts.delivered}</td>
                  <td>{m.counts.pending}</td>
                  <td>{m.counts.expired}</td>
                  <td>{m.revokedAt && <span class="badge revoked">revoked</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p>
          {pages.length > 1 && (
            <button type="button" class="secondary" onClick={() => setPages(pages.slice(0, -1))}>
              Newer
            </button>
          )}{' '}
          {list.data?.next && (
            <button type="button" class="secondary" onClick={() => setPages([...pages, list.data?.next ?? undefined])}>
              Older
            </button>
          )}
        </p>
      </Section>
    </>
  );
}

export function MessagesPage({ app, id, query }: { app: string; id?: string | undefined; query: URLSearchParams }) {
  const api = v1(app);
  return id ? (
    <>
      <p>
        <a href={href(app, 'messages')}>← All messages</a>
      </p>
      <MessageView api={api} app={app} id={id} />
    </>
  ) : (
    <MessageList api={api} app={app} query={query} />
  );
}
