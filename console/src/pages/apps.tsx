/** The operator's apps, and creating one (with its first API key, whose secret is shown once). */
import { useState } from 'preact/hooks';
import { consoleApi, type SessionInfo } from '../api';
import { Field, FormError, text, useSubmit, type Errors } from '../form';
import { href } from '../route';
import { SecretOnce, Section, when } from '../widgets';

export function AppsPage({ session, refresh }: { session: SessionInfo; refresh: () => void }) {
  const [name, setName] = useState('');
  const [created, setCreated] = useState<{ app: { id: string; name: string }; key: { id: string; secret: string } } | undefined>();
  const { errors, busy, run } = useSubmit({ fields: ['name'] });

  const check = (): Errors => (name.trim() === '' || name.trim().length > 64 ? { name: 'a name of 1 to 64 characters' } : {});

  return (
    <>
      <h1>Apps</h1>
      <Section title="Your apps">
        {session.apps.length === 0 ? (
          <p class="muted">You are not a member of any app yet: create one below.</p>
        ) : (
          <table class="list" data-table="apps">
            <thead>
              <tr>
                <th>Name</th>
                <th>App id</th>
                <th>Created</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {session.apps.map((app) => (
                <tr key={app.id}>
                  <td>
                    <a href={href(app.id, 'push')}>{app.name}</a>
                  </td>
                  <td>
                    <code>{app.id}</code>
                  </td>
                  <td>{when(app.createdAt)}</td>
                  <td class="actions">
                    <a href={href(app.id, 'keys')}>Keys</a> · <a href={href(app.id, 'reports')}>Reports</a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Create an app">
        {created ? (
          <SecretOnce
            title={`App ${created.app.name} created`}
            rows={[
              ['App id', created.app.id],
              ['Key id', created.key.id],
            ]}
            secret={created.key.secret}
            onDone={() => setCreated(undefined)}
          />
        ) : (
          <form
            class="inline-form"
            noValidate
            onSubmit={async (e) => {
              e.preventDefault();
              const done = await run(check, () => consoleApi.createApp(name.trim()));
              if (done) {
                setCreated(done);
                setName('');
                refresh();
              }
            }}
          >
            <Field label="Name" name="name" errors={errors} hint="what your team calls it; it comes with its first API key">
              <input name="name" value={name} onInput={text(setName)} maxLength={64} />
            </Field>
            <button type="submit" disabled={busy}>
              Create app
            </button>
            <FormError errors={errors} />
          </form>
        )}
      </Section>
    </>
  );
}
