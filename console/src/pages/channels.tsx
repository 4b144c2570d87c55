/**
 * Vendor channels: APNs (token or certificate; production or sandbox), FCM, Huawei and Xiaomi
 * credentials, validated by the control plane when saved (a problem names its field). Saved
 * credentials are never shown again: only the summary the API gives.
 */
import { useState } from 'preact/hooks';
import { v1, type V1 } from '../api';
import { Field, FormError, text, useSubmit, type Errors } from '../form';
import { ConfirmButton, Failed, Loading, Section, useLoad, when } from '../widgets';

type Vendor = 'apns' | 'fcm' | 'huawei' | 'xiaomi';
const NAMES: Record<Vendor, string> = { apns: 'Apple (APNs)', fcm: 'Firebase (FCM)', huawei: 'Huawei Push Kit', xiaomi: 'Xiaomi MiPush' };
const FIELDS: Record<Vendor, string[]> = {
  apns: ['auth', 'key', 'keyId', 'teamId', 'bundleId', 'production', 'cert', 'pfx', 'passphrase'],
  fcm: ['serviceAccount'],
  huawei: ['appId', 'clientId', 'clientSecret'],
  xiaomi: ['appSecret', 'packageName'],
};

interface Summary {
  vendor: Vendor;
  updatedAt: string;
  summary: Record<string, unknown>;
}

/** A text field whose value can also come from a file (keys, certificates, service accounts). */
function FileOrText(props: { name: string; value: string; set: (v: string) => void; rows: number; accept: string; base64?: boolean; placeholder?: string }) {
  return (
    <>
      <textarea name={props.name} rows={props.rows} value={props.value} onInput={text(props.set)} placeholder={props.placeholder} />
      <input
        type="file"
        accept={props.accept}
        aria-label={`${props.name} from a file`}
        onChange={async (e) => {
          const file = (e.currentTarget as HTMLInputElement).files?.[0];
          if (!file) return;
          if (props.base64) {
            const bytes = new Uint8Array(await file.arrayBuffer());
            let binary = '';
            for (const b of bytes) binary += String.fromCharCode(b);
            props.set(btoa(binary));
          } else props.set(await file.text());
        }}
      />
    </>
  );
}

function VendorForm({ api, vendor, onSaved, onCancel }: { api: V1; vendor: Vendor; onSaved: () => void; onCancel: () => void }) {
  const [v, setV] = useState<Record<string, string>>({ auth: 'token', environment: 'production' });
  const set = (name: string) => (value: string) => setV((old) => ({ ...old, [name]: value }));
  const input = (name: string, props: Record<string, unknown> = {}) => <input name={name} value={v[name] ?? ''} onInput={text(set(name))} {...props} />;
  const { errors, busy, run } = useSubmit({ fields: FIELDS[vendor] });
  const value = (name: string) => (v[name] ?? '').trim();

  function build(found: Errors): object {
    const required = (name: string, what: string) => {
      if (value(name) === '') found[name] = `${what} is missing`;
      return value(name);
    };
    switch (vendor) {
      case 'apns': {
        const common = { bundleId: required('bundleId', 'the bundle id'), production: v.environment === 'production' };
        if (v.auth === 'token') {
          if (value('keyId') !== '' && !/^[A-Z0-9]{10}$/.test(value('keyId'))) found.keyId = '10 characters A-Z 0-9, as Apple shows it';
          if (value('teamId') !== '' && !/^[A-Z0-9]{10}$/.test(value('teamId'))) found.teamId = '10 characters A-Z 0-9';
          return { auth: 'token', key: required('key', 'the .p8 key'), keyId: required('keyId', 'the key id'), teamId: required('teamId', 'the team id'), ...common };
        }
        const withPassphrase = value('passphrase') === '' ? {} : { passphrase: v.passphrase };
        if (value('pfx') !== '') return { auth: 'certificate', pfx: value('pfx'), ...withPassphrase, ...common };
        return { auth: 'certificate', cert: required('cert', 'the certificate (or a .p12 file)'), key: required('key', 'the private key'), ...withPassphrase, ...common };
      }
      case 'fcm': {
        let serviceAccount: unknown;
        try {
          serviceAccount = JSON.parse(required('serviceAccount', 'the service-account JSON') || '{}');
        } catch {
          found.serviceAccount = 'not valid JSON: paste the whole file from the Firebase console';
        }
        return { serviceAccount };
      }
      case 'huawei':
        if (value('appId') !== '' && !/^[0-9]{1,32}$/.test(value('appId'))) found.appId = 'the numeric app id';
        if (value('clientId') !== '' && !/^[0-9]{1,32}$/.test(value('clientId'))) found.clientId = 'the numeric OAuth client id';
        return { appId: required('appId', 'the app id'), ...(value('clientId') !== '' && { clientId: value('clientId') }), clientSecret: required('clientSecret', 'the app secret') };
      case 'xiaomi':
        if (value('packageName') !== '' && !/^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$/.test(value('packageName'))) found.packageName = 'a package name, like com.example.app';
        return { appSecret: required('appSecret', 'the app secret'), packageName: required('packageName', 'the package name') };
    }
  }

  return (
    <form
      noValidate
      data-vendor-form={vendor}
      onSubmit={async (e) => {
        e.preventDefault();
        const found: Errors = {};
        const config = build(found);
        const saved = await run(() => found, () => api.put(`/channels/${vendor}`, config));
        if (saved) {
          setV({ auth: 'token', environment: 'production' });
          onSaved();
        }
      }}
    >
      {vendor === 'apns' && (
        <>
          <div class="row-fields">
            <Field label="Authentication" name="auth" errors={errors}>
              <select name="auth" value={v.auth} onChange={(e) => set('auth')((e.currentTarget as HTMLSelectElement).value)}>
                <option value="token">token (.p8 key)</option>
                <option value="certificate">certificate</option>
              </select>
            </Field>
            <Field label="Environment" name="production" errors={errors}>
              <select name="environment" value={v.environment} onChange={(e) => set('environment')((e.currentTarget as HTMLSelectElement).value)}>
                <option value="production">production</option>
                <option value="sandbox">sandbox (development builds)</option>
              </select>
            </Field>
            <Field label="Bundle id" name="bundleId" errors={errors}>
              {input('bundleId', { placeholder: 'com.example.app' })}
            </Field>
          </div>
          {v.auth === 'token' ? (
            <>
              <div class="row-fields">
                <Field label="Key id" name="keyId" errors={errors}>
                  {input('keyId', { placeholder: 'ABC123DEFG' })}
                </Field>
                <Field label="Team id" name="teamId" errors={errors}>
                  {input('teamId', { placeholder: 'DEF123GHIJ' })}
                </Field>
              </div>
              <Field label="Signing key (.p8)" name="key" errors={errors} group>
                <FileOrText name="key" value={v.key ?? ''} set={set('key')} rows={4} accept=".p8,.pem" placeholder="-----BEGIN PRIVATE KEY-----" />
              </Field>
            </>
          ) : (
            <>
              <Field label="Certificate (PEM)" name="cert" errors={errors} group>
                <FileOrText name="cert" value={v.cert ?? ''} set={set('cert')} rows={4} accept=".pem,.crt,.cer" />
              </Field>
              <Field label="Private key (PEM)" name="key" errors={errors} group>
                <FileOrText name="key" value={v.key ?? ''} set={set('key')} rows={4} accept=".pem,.key" />
              </Field>
              <Field label="Or a .p12 file (base64)" name="pfx" errors={errors} group>
                <FileOrText name="pfx" value={v.pfx ?? ''} set={set('pfx')} rows={2} accept=".p12,.pfx" base64 />
              </Field>
              <Field label="Passphrase" name="passphrase" errors={errors}>
                {input('passphrase', { type: 'password', autoComplete: 'off' })}
              </Field>
            </>
          )}
        </>
      )}
      {vendor === 'fcm' && (
        <Field label="Service account (JSON)" name="serviceAccount" errors={errors} group>
          <FileOrText name="serviceAccount" value={v.serviceAccount ?? ''} set={set('serviceAccount')} rows={5} accept=".json,application/json" placeholder='{"type": "service_account", ...}' />
        </Field>
      )}
      {vendor === 'huawei' && (
        <div class="row-fields">
          <Field label="App id" name="appId" errors={errors}>
            {input('appId', { inputMode: 'numeric' })}
          </Field>
          <Field label="OAuth client id (optional)" name="clientId" errors={errors}>
            {input('clientId', { inputMode: 'numeric' })}
          </Field>
          <Field label="App secret" name="clientSecret" errors={errors}>
            {input('clientSecret', { type: 'password', autoComplete: 'off' })}
          </Field>
        </div>
      )}
      {vendor === 'xiaomi' && (
        <div class="row-fields">
          <Field label="App secret" name="appSecret" errors={errors}>
            {input('appSecret', { type: 'password', autoComplete: 'off' })}
          </Field>
          <Field label="Package name" name="packageName" errors={errors}>
            {input('packageName', { placeholder: 'com.example.app' })}
          </Field>
        </div>
      )}
      <FormError errors={errors} />
      <button type="submit" disabled={busy}>
        Validate and save
      </button>{' '}
      <button type="button" class="secondary" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}

export function ChannelsPage({ app }: { app: string }) {
  const api = v1(app);
  const list = useLoad(() => api.get<{ channels: Summary[] }>('/channels'), [app]);
  const [editing, setEditing] = useState<Vendor | undefined>();
  const remove = useSubmit({ fields: [] });
  if (list.error) return <Failed error={list.error} />;
  if (!list.data) return <Loading what="channels" />;
  return (
    <>
      {(Object.keys(NAMES) as Vendor[]).map((vendor) => {
        const saved = list.data?.channels.find((c) => c.vendor === vendor);
        return (
          <Section
            key={vendor}
            title={NAMES[vendor]}
            actions={
              <span>
                {saved && (
                  <ConfirmButton
                    label="Remove"
                    confirm="Remove these credentials"
                    onConfirm={() =>
                      void remove.run(
                        () => ({}),
                        async () => {
                          await api.delete(`/channels/${vendor}`);
                          list.reload();
                        },
                      )
                    }
                  />
                )}{' '}
                {editing !== vendor && (
                  <button type="button" class="secondary" data-edit={vendor} onClick={() => setEditing(vendor)}>
                    {saved ? 'Replace' : 'Configure'}
                  </button>
                )}
              </span>
            }
          >
            <div data-channel={vendor}>
              {saved ? (
                <dl class="facts">
                  {Object.entries(saved.summary).map(([k, value]) => (
                    <div key={k}>
                      <dt>{k === 'production' ? 'environment' : k}</dt>
                      <dd>{k === 'production' ? (value ? 'production' : 'sandbox') : String(value)}</dd>
                    </div>
                  ))}
                  <div><dt>Saved</dt><dd>{when(saved.updatedAt)}</dd></div>
                </dl>
              ) : (
                <p class="muted">Not configured: devices of this vendor get messages over the socket only.</p>
              )}
              {editing === vendor && (
                <VendorForm
                  api={api}
                  vendor={vendor}
                  onSaved={() => {
                    setEditing(undefined);
                    list.reload();
                  }}
                  onCancel={() => setEditing(undefined)}
                />
              )}
            </div>
          </Section>
        );
      })}
      <FormError errors={remove.errors} />
    </>
  );
}
