/**
 * The app's API keys: create (an HMAC secret is shown once), disable, enable, delete, and rotate
 * (a new HMAC key, then the old one disabled: at most two are active at once).
 */
import { useState } from 'preact/hooks';
import { v1 } from '../api';
import { Field, FormError, text, useSubmit, type Errors } from '../form';
import { ConfirmButton, Failed, Loading, SecretOnce, Section, useLoad, when } from '../widgets';

interface Key {
  id: string;
  kind: 'hmac' | 'rsa' | 'ed25519';
  status: 'active' | 'disabled';
  createdAt: string;
}
type NewKey = Key & { secret?: string };

export function KeysPage({ app }: { app: string }) {
  const api = v1(app);
  const keys = useLoad(() => api.get<{ keys: Key[] }>('/keys'), [app]);
  const [shown, setShown] = useState<{ key: NewKey; note: string } | undefined>();
  const [kind, setKind] = useState<Key['kind']>('hmac');
  const [publicKey, setPublicKey] = useState('');
  const create = useSubmit({ fields: ['kind', 'publicKey'], codeFields: { INVALID_KEY: 'publicKey' } });
  const actions = useSubmit({ fields: [] });

  const check = (): Errors => {
    if (kind === 'hmac') return {};
    if (!/^-----BEGIN PUBLIC KEY-----/.test(publicKey.trim())) return { publicKey: 'paste the PEM public key (-----BEGIN PUBLIC KEY-----), never the private one' };
    return publicKey.length > 8192 ? { publicKey: 'at most 8192 characters' } : {};
  };

  const act = async (work: () => Promise<unknown>) => {
    await actions.run(() => ({}), work);
    keys.reload();
  };

  const rotate = (old: Key) =>
    act(async () => {
      const fresh = await api.post<NewKey>('/keys', { kind: 'hmac' });
      setShown({ key: fresh, note: `Switch your servers to ${fresh.id}; ${old.id} is now disabled (delete it once nothing uses it).` });
      await api.post(`/keys/${old.id}/disable`);
    });

  return (
    <>
      {shown?.key.secret && (
        <SecretOnce title={`Key ${shown.key.id} created`} rows={[['Key id', shown.key.id], ['Note', shown.note]]} secret={shown.key.secret} onDone={() => setShown(undefined)} />
      )}
      <Section title="Keys">
        {keys.loading && !keys.data && <Loading what="keys" />}
        {keys.error && <Failed error={keys.error} />}
        {keys.data && (
          <table class="list" data-table="keys">
            <thead>
              <tr>
                <th>Key id</th>
                <th>Kind</th>
                <th>Status</th>
                <th>Created</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {keys.data.keys.map((key) => (
                <tr key={key.id} data-key={key.id}>
                  <td>
                    <code>{key.id}</code>
                  </td>
                  <td>{key.kind}</td>
                  <td>
                    <span class={`badge ${key.status}`}>{key.status}</span>
                  </td>
                  <td>{when(key.createdAt)}</td>
                  <td class="actions">
                    {key.status === 'active' && key.kind === 'hmac' && (
                      <ConfirmButton label="Rotate" confirm="Create a new key and disable this one" onConfirm={() => void rotate(key)} />
                    )}
                    {key.status === 'active' ? (
                      <ConfirmButton label="Disable" confirm="Disable it" onConfirm={() => void act(() => api.post(`/keys/${key.id}/disable`))} />
                    ) : (
                      <button type="button" class="secondary" onClick={() => void act(() => api.post(`/keys/${key.id}/enable`))}>
                        Enable
                      </button>
                    )}
                    <ConfirmButton label="Delete" confirm="Delete it for good" onConfirm={() => void act(() => api.delete(`/keys/${key.id}`))} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <FormError errors={actions.errors} />
      </Section>
      <Section title="Create a key">
        <form
          noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            const key = await create.run(check, () => api.post<NewKey>('/keys', kind === 'hmac' ? { kind } : { kind, publicKey: publicKey.trim() }));
            if (key) {
              setShown({ key, note: 'Sign requests with it (docs/api.md section 2).' });
              setPublicKey('');
              keys.reload();
            }
          }}
        >
          <Field label="Kind" name="kind" errors={create.errors}>
            <select name="kind" value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value as Key['kind'])}>
              <option value="hmac">HMAC (the control plane makes a secret)</option>
              <option value="ed25519">Ed25519 (upload your public key)</option>
              <option value="rsa">RSA, 2048 bits or more (upload your public key)</option>
            </select>
          </Field>
          {kind !== 'hmac' && (
            <Field label="Public key (PEM)" name="publicKey" errors={create.errors}>
              <textarea name="publicKey" rows={5} value={publicKey} onInput={text(setPublicKey)} placeholder="-----BEGIN PUBLIC KEY-----" />
            </Field>
          )}
          <FormError errors={create.errors} />
          <button type="submit" disabled={create.busy}>
            Create key
          </button>
          <p class="hint">An app has at most two active keys: disable one before creating a third.</p>
        </form>
      </Section>
    </>
  );
}
