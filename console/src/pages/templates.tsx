/** Templates: the list, and an editor with a live preview of the placeholders filled in. */
import { useState } from 'preact/hooks';
import { seg, v1 } from '../api';
import { Field, FormError, pairsText, parsePairs, text, useSubmit, type Errors } from '../form';
import { placeholders, render } from '../placeholders';
import { MessagePreview } from '../preview';
import { ConfirmButton, Failed, Loading, Section, useLoad } from '../widgets';

export interface Template {
  name: string;
  title?: string;
  body?: string;
  extras?: Record<string, string>;
  placeholders: string[];
}

const NAME = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,64}$/;

function Editor({ app, editing, onSaved, onCancel }: { app: string; editing?: Template; onSaved: () => void; onCancel: () => void }) {
  const [name, setName] = useState(editing?.name ?? '');
  const [title, setTitle] = useState(editing?.title ?? '');
  const [body, setBody] = useState(editing?.body ?? '');
  const [extras, setExtras] = useState(pairsText(editing?.extras));
  const [samples, setSamples] = useState<Record<string, string>>({});
  const { errors, busy, run } = useSubmit({ fields: ['name', 'title', 'body', 'extras'], codeFields: { EMPTY_TEMPLATE: 'title' } });

  const draftErrors: Errors = {};
  const draft = { ...(title && { title }), ...(body && { body }), extras: parsePairs(extras, 'extras', draftErrors) };
  const names = placeholders(draft);

  const check = (): Errors => {
    const found: Errors = { ...draftErrors };
    if (!NAME.test(name)) found.name = '1 to 64 of A-Z a-z 0-9 _ . -';
    if (title.length > 256) found.title = 'at most 256 characters';
    if (body.length > 4096) found.body = 'at most 4096 characters';
    if (!title.trim() && !body.trim()) found.title = 'a template needs a title or a body';
    return found;
  };

  return (
    <form
      class="editor"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        const saved = await run(check, () => v1(app).put(`/templates/${seg(name)}`, draft));
        if (saved) onSaved();
      }}
    >
      <div class="columns">
        <div>
          <Field label="Name" name="name" errors={errors} hint="A-Z a-z 0-9 _ . - (up to 64)">
            <input name="name" value={name} onInput={text(setName)} disabled={editing !== undefined} />
          </Field>
          <Field label="Title" name="title" errors={errors} hint="{{placeholder}} marks what each push fills in">
            <input name="title" value={title} onInput={text(setTitle)} />
          </Field>
          <Field label="Body" name="body" errors={errors}>
            <textarea name="body" rows={4} value={body} onInput={text(setBody)} />
          </Field>
          <Field label="Extras" name="extras" errors={errors} hint="name=value, one a line; values may hold placeholders">
            <textarea name="extras" rows={3} value={extras} onInput={text(setExtras)} />
          </Field>
          <FormError errors={errors} />
          <button type="submit" disabled={busy}>
            {editing ? 'Save template' : 'Create template'}
          </button>{' '}
          <button type="button" class="secondary" onClick={onCancel}>
            Cancel
          </button>
        </div>
        <div>
          <h3>Placeholders</h3>
          {names.length === 0 ? (
            <p class="muted">None yet: write {'{{name}}'} in the title, body or an extra.</p>
          ) : (
            names.map((p) => (
              <Field key={p} label={`Sample value of ${p}`} name={`sample.${p}`} errors={{}}>
                <input name={`sample.${p}`} value={samples[p] ?? ''} onInput={(e) => setSamples({ ...samples, [p]: (e.currentTarget as HTMLInputElement).value })} />
              </Field>
            ))
          )}
          <h3>Preview</h3>
          <MessagePreview content={render(draft, Object.fromEntries(Object.entries(samples).filter(([, v]) => v !== '')))} />
        </div>
      </div>
    </form>
  );
}

export function TemplatesPage({ app }: { app: string }) {
  const list = useLoad(() => v1(app).get<{ templates: Template[] }>('/templates'), [app]);
  const [editing, setEditing] = useState<Template | 'new' | undefined>();
  const remove = useSubmit({ fields: [] });

  return (
    <>
      {editing !== undefined && (
        <Section title={editing === 'new' ? 'New template' : `Template ${editing.name}`}>
          <Editor
            key={editing === 'new' ? 'new' : editing.name}
            app={app}
            {...(editing !== 'new' && { editing })}
            onSaved={() => {
              setEditing(undefined);
              list.reload();
            }}
            onCancel={() => setEditing(undefined)}
          />
        </Section>
      )}
      <Section
        title="Templates"
        actions={
          editing === undefined && (
            <button type="button" onClick={() => setEditing('new')}>
              New template
            </button>
          )
        }
      >
        {list.loading && !list.data && <Loading what="templates" />}
        {list.error && <Failed error={list.error} />}
        {list.data && list.data.templates.length === 0 && <p class="muted">No templates yet.</p>}
        {list.data && list.data.templates.length > 0 && (
          <table class="list" data-table="templates">
            <thead>
              <tr>
                <th>Name</th>
                <th>Title</th>
                <th>Placeholders</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data.templates.map((t) => (
                <tr key={t.name} data-template={t.name}>
                  <td>
                    <code>{t.name}</code>
                  </td>
                  <td>{t.title ?? <span class="muted">{t.body?.slice(0, 60)}</span>}</td>
                  <td>{t.placeholders.join(', ') || '–'}</td>
                  <td class="actions">
                    <button type="button" class="secondary" onClick={() => setEditing(t)}>
                      Edit
                    </button>
                    <ConfirmButton
                      label="Delete"
                      confirm={`Delete ${t.name}`}
                      onConfirm={() =>
                        void remove.run(
                          () => ({}),
                          async () => {
                            await v1(app).delete(`/templates/${seg(t.name)}`);
                            list.reload();
                          },
                        )
                      }
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <FormError errors={remove.errors} />
      </Section>
    </>
  );
}
