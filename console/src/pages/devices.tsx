/**
 * Devices and users: search by device id or user id; a device's facts, binding, tags, attributes,
 * vendor tokens (masked by the API), online state and latest messages; a user's profile and devices.
 */
import { useState } from 'preact/hooks';
import { seg, v1, type V1 } from '../api';
import { Field, FormError, text, useSubmit, UUID, type Errors } from '../form';
import { go, href } from '../route';
import { Failed, Loading, Section, useLoad, when } from '../widgets';

interface Device {
  id: string;
  userId: string | null;
  platform: string;
  osVersion: string | null;
  appVersion: string | null;
  sdkVersion: string | null;
  locale: string | null;
  timezone: string | null;
  tags: string[];
  attributes: Record<string, string>;
  vendorTokens: Record<string, string>;
  createdAt: string;
  lastSeenAt: string;
  online: boolean;
}

interface RecentMessage {
  id: string;
  mode: string;
  pushType: string;
  title: string | null;
  status: string;
  channel: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

const Online = ({ online }: { online: boolean }) => (
  <span class={`badge ${online ? 'online' : 'offline'}`} data-online={String(online)}>
    {online ? 'online' : 'offline'}
  </span>
);

function Profile({ tags, attributes }: { tags: string[]; attributes: Record<string, string> }) {
  return (
    <>
      <div><dt>Tags</dt><dd data-tags>{tags.length === 0 ? '–' : tags.map((t) => <span key={t} class="tag">{t}</span>)}</dd></div>
      <div>
        <dt>Attributes</dt>
        <dd data-attributes>
          {Object.keys(attributes).length === 0 ? '–' : Object.entries(attributes).map(([k, v]) => <span key={k} class="tag">{k}={v}</span>)}
        </dd>
      </div>
    </>
  );
}

function DeviceView({ api, app, id }: { api: V1; app: string; id: string }) {
  const device = useLoad(() => api.get<Device>(`/devices/${id}`), [app, id]);
  const messages = useLoad(() => api.get<{ messages: RecentMessage[] }>(`/devices/${id}/messages`), [app, id]);
  if (device.error) return <Failed error={device.error} />;
  if (!device.data) return <Loading what="the device" />;
  const d = device.data;
  return (
    <>
      <Section
        title={`Device ${d.id}`}
        actions={
          <button type="button" class="secondary" onClick={() => (device.reload(), messages.reload())}>
            Refresh
          </button>
        }
      >
        <dl class="facts" data-device={d.id}>
          <div><dt>State</dt><dd><Online online={d.online} /> last seen {when(d.lastSeenAt)}</dd></div>
          <div>
            <dt>User</dt>
            <dd data-user>{d.userId ? <a href={href(app, 'devices', undefined, { q: d.userId })}>{d.userId}</a> : 'not bound'}</dd>
          </div>
          <div><dt>Platform</dt><dd>{d.platform} {d.osVersion ?? ''}</dd></div>
          <div><dt>App version</dt><dd>{d.appVersion ?? '–'}</dd></div>
          <div><dt>SDK</dt><dd>{d.sdkVersion ?? '–'}</dd></div>
          <div><dt>Locale, zone</dt><dd>{d.locale ?? '–'}, {d.timezone ?? '–'}</dd></div>
          <Profile tags={d.tags} attributes={d.attributes} />
          <div>
            <dt>Vendor tokens</dt>
            <dd data-vendor-tokens>
              {Object.keys(d.vendorTokens).length === 0 ? '–' : Object.entries(d.vendorTokens).map(([v, t]) => <span key={v} class="tag">{v}: {t}</span>)}
            </dd>
          </div>
          <div><dt>Registered</dt><dd>{when(d.createdAt)}</dd></div>
        </dl>
      </Section>
      <Section title="Latest messages">
        {messages.error && <Failed error={messages.error} />}
        {messages.data && messages.data.messages.length === 0 && <p class="muted">No messages were sent to this device (broadcasts are not listed per device).</p>}
        {messages.data && messages.data.messages.length > 0 && (
          <table class="list" data-table="device-messages">
            <thead>
              <tr><th>Message</th><th>Title</th><th>Kind</th><th>Status</th><th>Channel</th><th>Sent</th><th>Delivered</th></tr>
            </thead>
            <tbody>
              {messages.data.messages.map((m) => (
                <tr key={m.id} data-message={m.id}>
                  <td><a href={href(app, 'messages', m.id)}><code>{m.id.slice(0, 13)}…</code></a></td>
                  <td>{m.title ?? <span class="muted">–</span>}</td>
                  <td>{m.mode}</td>
                  <td><span class={`badge ${m.status}`}>{m.status}</span></td>
                  <td>{m.channel ?? '–'}</td>
                  <td>{when(m.createdAt)}</td>
                  <td>{when(m.deliveredAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

function UserView({ api, app, id }: { api: V1; app: string; id: string }) {
  const user = useLoad(() => api.get<{ userId: string; tags: string[]; attributes: Record<string, string>; devices: Device[] }>(`/users/${seg(id)}`), [app, id]);
  if (user.error) return <Failed error={user.error} />;
  if (!user.data) return <Loading what="the user" />;
  const u = user.data;
  return (
    <Section title={`User ${u.userId}`}>
      <dl class="facts" data-user-id={u.userId}>
        <Profile tags={u.tags} attributes={u.attributes} />
      </dl>
      <h3>Devices bound to this user</h3>
      {u.devices.length === 0 ? (
        <p class="muted">None: no device is bound to this user id.</p>
      ) : (
        <table class="list" data-table="user-devices">
          <thead>
            <tr><th>Device</th><th>Platform</th><th>App version</th><th>State</th><th>Last seen</th></tr>
          </thead>
          <tbody>
            {u.devices.map((d) => (
              <tr key={d.id}>
                <td><a href={href(app, 'devices', undefined, { q: d.id })}><code>{d.id}</code></a></td>
                <td>{d.platform}</td>
                <td>{d.appVersion ?? '–'}</td>
                <td><Online online={d.online} /></td>
                <td>{when(d.lastSeenAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

export function DevicesPage({ app, query }: { app: string; query: URLSearchParams }) {
  const api = v1(app);
  const q = query.get('q') ?? '';
  const [input, setInput] = useState(q);
  const search = useSubmit({ fields: ['q'] });
  const check = (): Errors => {
    const value = input.trim();
    if (value === '') return { q: 'a device id or a user id' };
    return value.length > 128 ? { q: 'a user id has at most 128 characters' } : {};
  };
  return (
    <>
      <Section title="Search">
        <form
          class="inline-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void search.run(check, async () => go(href(app, 'devices', undefined, { q: input.trim() })));
          }}
        >
          <Field label="Device id or user id" name="q" errors={search.errors} hint="a UUID is looked up as a device, anything else as a user">
            <input name="q" value={input} onInput={text(setInput)} size={44} />
          </Field>
          <button type="submit">Search</button>
          <FormError errors={search.errors} />
        </form>
      </Section>
      {q !== '' && (UUID.test(q) ? <DeviceView key={q} api={api} app={app} id={q.toLowerCase()} /> : <UserView key={q} api={api} app={app} id={q} />)}
    </>
  );
}
