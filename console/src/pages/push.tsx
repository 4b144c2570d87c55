/**
 * Quick push: simple, template, multiple (targets and values from a CSV file) and broadcast (with
 * tag, attribute and fact conditions); validity, channel policy, scheduling; a preview of the
 * message; then the message id with its live status.
 */
import { useState } from 'preact/hooks';
import { v1, type V1 } from '../api';
import { buildCondition, ConditionInputError, FACTS, type Row, type TermKind } from '../condition';
import { CsvError, parseTargets, type CsvTarget } from '../csv';
import { Field, FormError, parsePairs, text, useSubmit, UUID, type Errors } from '../form';
import { missingValues, placeholders, render, type Content } from '../placeholders';
import { MessagePreview } from '../preview';
import { href } from '../route';
import { Section, useLoad, usePoll, when } from '../widgets';
import type { Template } from './templates';

type Kind = 'simple' | 'template' | 'multiple' | 'broadcast';
const KINDS: [Kind, string][] = [
  ['simple', 'Simple'],
  ['template', 'Template'],
  ['multiple', 'Multiple (CSV)'],
  ['broadcast', 'Broadcast'],
];
const UNITS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

const FIELDS = [
  'target', 'target.device', 'target.user', 'template', 'values', 'targets', 'pushType', 'title', 'body', 'extras', 'payload',
  'ttl', 'channel', 'businessId', 'audience', 'condition', 'schedule', 'schedule.at', 'schedule.localTime',
];
/** Errors the API raises about one field without naming it. */
const CODE_FIELDS: Record<string, string> = {
  INVALID_TARGET: 'target',
  DEVICE_NOT_FOUND: 'target',
  TEMPLATE_NOT_FOUND: 'template',
  MISSING_PLACEHOLDER: 'values',
  EMPTY_NOTIFICATION: 'title',
  MESSAGE_TOO_LARGE: 'body',
  TTL_TOO_LONG: 'ttl',
  INVALID_CONDITION: 'condition',
  INVALID_SCHEDULE: 'schedule',
};

type Result =
  | { kind: 'message'; messageId: string; targeted: number; duplicate: boolean; broadcast: boolean }
  | { kind: 'task'; taskId: string; messages: { messageId: string; targeted: number }[]; duplicate: boolean }
  | { kind: 'schedule'; scheduleId: string; fireAt: string[] };

interface MessageStatus {
  id: string;
  revokedAt: string | null;
  expiresAt: string;
  counts: Record<'targeted' | 'pending' | 'delivered' | 'expired' | 'revoked' | 'failed', number>;
}

function Counts({ counts }: { counts: Record<string, number> }) {
  return (
    <ul class="counts" data-counts>
      {Object.entries(counts).map(([name, n]) => (
        <li key={name} data-count={name}>
          <strong>{n}</strong> {name}
        </li>
      ))}
    </ul>
  );
}

interface Firing {
  fireAt: string;
  status: string;
  error: string | null;
}

interface Live {
  counts?: Record<string, number>;
  firings?: Firing[];
  error?: string;
}

/** The status of what was sent: a message's per-device counts, a task's sums, a schedule's firings. */
function liveStatusOf(api: V1, result: Result): Promise<Live> {
  switch (result.kind) {
    case 'message':
      // A broadcast keeps no per-device rows: its progress is what the devices reported (analytics).
      if (result.broadcast) {
        return api
          .get<{ targeted: number; counts: Record<string, number> }>(`/reports/messages/${result.messageId}`)
          .then((f) => ({ counts: { targeted: f.targeted, delivered: f.counts.delivered ?? 0, arrived: f.counts.arrived ?? 0, opened: f.counts.opened ?? 0 } }));
      }
      return api.get<MessageStatus>(`/messages/${result.messageId}`).then((m) => ({ counts: m.counts }));
    case 'task':
      return api.get<{ counts: MessageStatus['counts'] }>(`/tasks/${result.taskId}`).then((t) => ({ counts: t.counts }));
    case 'schedule':
      return api.get<{ firings: Firing[] }>(`/schedules/${result.scheduleId}`).then((s) => ({ firings: s.firings }));
  }
}

/** The pushed message's (or task's, or schedule's) status, polled until nothing is pending. */
function LiveStatus({ api, app, result }: { api: V1; app: string; result: Result }) {
  const [status, setStatus] = useState<Live>({});
  const [polls, setPolls] = useState(0);
  const broadcast = result.kind === 'message' && result.broadcast;
  const settled = !broadcast && status.counts !== undefined && status.counts.pending === 0 && (status.counts.targeted ?? 0) > 0;
  usePoll(
    () => {
      setPolls((n) => n + 1);
      liveStatusOf(api, result).then(setStatus, (error: Error) => setStatus({ error: error.message }));
    },
    1500,
    !settled && polls < 80,
    [result],
  );
  return (
    <div class="result" data-result={result.kind}>
      {result.kind === 'message' && (
        <p>
          Message <a href={href(app, 'messages', result.messageId)} data-message-id={result.messageId}><code>{result.messageId}</code></a>
          {result.duplicate && ' (a repeat of this business id: nothing new was sent)'}
        </p>
      )}
      {result.kind === 'task' && (
        <p>
          Task <code data-task-id={result.taskId}>{result.taskId}</code>: {result.messages.length} messages
          {result.messages[0] && (
            <>
              {' '}
              (first: <a href={href(app, 'messages', result.messages[0].messageId)}><code>{result.messages[0].messageId}</code></a>)
            </>
          )}
        </p>
      )}
      {result.kind === 'schedule' && (
        <p>
          Schedule <code data-schedule-id={result.scheduleId}>{result.scheduleId}</code>, firing at {result.fireAt.map(when).join(', ')}
        </p>
      )}
      {status.counts && <Counts counts={status.counts} />}
      {status.firings && (
        <ul class="counts">
          {status.firings.map((f) => (
            <li key={f.fireAt}>
              {when(f.fireAt)}: <strong>{f.status}</strong> {f.error ?? ''}
            </li>
          ))}
        </ul>
      )}
      {status.error && <p class="form-error">{status.error}</p>}
      <p class="hint">
        {settled ? 'Nothing is pending any more.' : polls >= 80 ? 'No longer refreshed: open the message for its status.' : 'Live: refreshed every 1.5 seconds.'}
      </p>
    </div>
  );
}

function ConditionBuilder(props: { rows: Row[]; setRows: (rows: Row[]) => void; combine: 'and' | 'or'; setCombine: (c: 'and' | 'or') => void }) {
  const update = (i: number, change: Partial<Row>) => props.setRows(props.rows.map((r, j) => (j === i ? { ...r, ...change } : r)));
  return (
    <div class="conditions" data-conditions>
      {props.rows.length > 1 && (
        <label class="inline">
          Devices matching{' '}
          <select value={props.combine} onChange={(e) => props.setCombine((e.currentTarget as HTMLSelectElement).value as 'and' | 'or')}>
            <option value="and">all</option>
            <option value="or">any</option>
          </select>{' '}
          of:
        </label>
      )}
      {props.rows.map((row, i) => (
        <div class="condition-row" key={i} data-condition-row={i}>
          <select aria-label="not" value={row.not ? 'not' : 'is'} onChange={(e) => update(i, { not: (e.currentTarget as HTMLSelectElement).value === 'not' })}>
            <option value="is">has</option>
            <option value="not">has not</option>
          </select>
          <select aria-label="kind" value={row.kind} onChange={(e) => update(i, { kind: (e.currentTarget as HTMLSelectElement).value as TermKind })}>
            <option value="tag">tag</option>
            <option value="attribute">attribute</option>
            <option value="fact">fact</option>
          </select>
          {row.kind === 'fact' ? (
            <select aria-label="fact" value={row.name} onChange={(e) => update(i, { name: (e.currentTarget as HTMLSelectElement).value })}>
              <option value="">(fact)</option>
              {FACTS.map((f) => (
                <option key={f} value={f}>
                  {f}
                </option>
              ))}
            </select>
          ) : (
            <input aria-label="name" placeholder={row.kind === 'tag' ? 'tag' : 'attribute name'} value={row.name} onInput={(e) => update(i, { name: (e.currentTarget as HTMLInputElement).value })} />
          )}
          {row.kind !== 'tag' && (
            <>
              <span>=</span>
              <input aria-label="value" placeholder="value, or a, b, c" value={row.value} onInput={(e) => update(i, { value: (e.currentTarget as HTMLInputElement).value })} />
            </>
          )}
          <button type="button" class="link" onClick={() => props.setRows(props.rows.filter((_, j) => j !== i))}>
            remove
          </button>
        </div>
      ))}
      <button type="button" class="secondary" onClick={() => props.setRows([...props.rows, { kind: 'tag', name: '', value: '', not: false }])}>
        Add a condition
      </button>
    </div>
  );
}

/** A local date and time from <input type="datetime-local">, as RFC 3339 with this browser's offset. */
function withOffset(local: string): string {
  const date = new Date(local);
  const minutes = -date.getTimezoneOffset();
  const sign = minutes >= 0 ? '+' : '-';
  const pad = (n: number) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  return `${local.length === 16 ? `${local}:00` : local}${sign}${pad(minutes / 60)}:${pad(minutes % 60)}`;
}

export function PushPage({ app }: { app: string }) {
  const api = v1(app);
  const templates = useLoad(() => api.get<{ templates: Template[] }>('/templates'), [app]);
  const [kind, setKind] = useState<Kind>('simple');
  const [targetType, setTargetType] = useState<'device' | 'user'>('device');
  const [targetId, setTargetId] = useState('');
  const [pushType, setPushType] = useState<'notification' | 'silent'>('notification');
  const [title, setTitle] = useState('');
  const [body, setBody] = useState('');
  const [extras, setExtras] = useState('');
  const [payload, setPayload] = useState('');
  const [templateName, setTemplateName] = useState('');
  const [values, setValues] = useState<Record<string, string>>({});
  const [csv, setCsv] = useState<{ name: string; text: string } | undefined>();
  const [audience, setAudience] = useState<'all' | 'bound' | 'unbound'>('all');
  const [rows, setRows] = useState<Row[]>([]);
  const [combine, setCombine] = useState<'and' | 'or'>('and');
  const [reach, setReach] = useState<string | undefined>();
  const [ttl, setTtl] = useState('');
  const [unit, setUnit] = useState<keyof typeof UNITS>('h');
  const [channel, setChannel] = useState<'auto' | 'socket' | 'vendor'>('auto');
  const [businessId, setBusinessId] = useState('');
  const [scheduleMode, setScheduleMode] = useState<'now' | 'at' | 'local'>('now');
  const [scheduleAt, setScheduleAt] = useState('');
  const [result, setResult] = useState<Result | undefined>();
  const { errors, setErrors, busy, run } = useSubmit({ fields: FIELDS, codeFields: CODE_FIELDS });

  const template = templates.data?.templates.find((t) => t.name === templateName);
  const usesTemplate = kind === 'template' || (kind === 'multiple' && templateName !== '');

  // Everything below is recomputed on each render: what is sent, and what is wrong with it.
  const found: Errors = {};
  const extrasParsed = parsePairs(extras, 'extras', found);
  const inline: Content = { ...(title && { title }), ...(body && { body }), ...(extrasParsed && { extras: extrasParsed }) };
  let targets: CsvTarget[] | undefined;
  if (kind === 'multiple' && csv) {
    try {
      targets = parseTargets(csv.text);
    } catch (error) {
      if (!(error instanceof CsvError)) throw error;
      found.targets = error.message;
    }
  }
  let condition: object | undefined;
  try {
    condition = buildCondition(rows, combine);
  } catch (error) {
    if (!(error instanceof ConditionInputError)) throw error;
    if (kind === 'broadcast') found.condition = error.message;
  }
  const content: Content = usesTemplate ? (template ?? {}) : inline;
  const previewValues = kind === 'template' ? values : (targets?.[0]?.values ?? {});
  const rendered = render(content, previewValues);

  function check(): Errors {
    const e: Errors = { ...found };
    if (kind === 'simple' || kind === 'template') {
      const id = targetId.trim();
      if (id === '') e.target = `the ${targetType} id is missing`;
      else if (targetType === 'device' && !UUID.test(id)) e.target = 'a device id is a UUID';
      else if (id.length > 128) e.target = 'a user id has at most 128 characters';
    }
    if (usesTemplate && !template) e.template = 'choose a template';
    if (kind === 'template' && template) {
      const missing = missingValues(template, values);
      if (missing.length > 0) e.values = `values needed for: ${missing.join(', ')}`;
    }
    if (kind === 'multiple' && !csv) e.targets = 'upload a CSV file of targets';
    if (!usesTemplate && pushType === 'notification' && !title.trim() && !body.trim()) e.title = 'a notification needs a title or a body';
    if (title.length > 256) e.title = 'at most 256 characters';
    if (body.length > 4096) e.body = 'at most 4096 characters';
    if (payload.trim() !== '') {
      try {
        JSON.parse(payload);
      } catch {
        e.payload = 'not valid JSON';
      }
    }
    if (ttl !== '' && !(/^\d+$/.test(ttl) && Number(ttl) >= 1)) e.ttl = 'a whole number, at least 1';
    if (businessId.length > 128) e.businessId = 'at most 128 characters';
    if (scheduleMode !== 'now' && scheduleAt === '') e.schedule = 'choose when';
    if (scheduleMode === 'local' && kind === 'multiple') e.schedule = "a multiple push is scheduled at one instant, not at the devices' local time";
    return e;
  }

  function request(): object {
    const common = {
      ...(pushType !== 'notification' && { pushType }),
      ...(payload.trim() !== '' && { payload: JSON.parse(payload) as unknown }),
      ...(ttl !== '' && { ttl: Number(ttl) * UNITS[unit] }),
      ...(channel !== 'auto' && { channel }),
      ...(businessId !== '' && { businessId }),
      ...(scheduleMode === 'at' && { schedule: { at: withOffset(scheduleAt) } }),
      ...(scheduleMode === 'local' && { schedule: { localTime: scheduleAt.slice(0, 16) } }),
    };
    const target = { [targetType]: targetId.trim() };
    switch (kind) {
      case 'simple':
        return { target, ...inline, ...common };
      case 'template':
        return { target, template: templateName, values, ...common };
      case 'multiple':
        return { targets, ...(usesTemplate ? { template: templateName } : inline), ...common };
      case 'broadcast':
        return { ...(audience !== 'all' && { audience }), ...(condition && { condition }), ...inline, ...common };
    }
  }

  const send = () =>
    run(check, async () => {
      const answer = await api.post<Record<string, unknown>>(`/push/${kind}`, request());
      const next: Result =
        'scheduleId' in answer
          ? { kind: 'schedule', ...(answer as { scheduleId: string; fireAt: string[] }) }
          : 'taskId' in answer
            ? { kind: 'task', ...(answer as { taskId: string; messages: { messageId: string; targeted: number }[]; duplicate: boolean }) }
            : { kind: 'message', broadcast: kind === 'broadcast', ...(answer as { messageId: string; targeted: number; duplicate: boolean }) };
      setResult(next);
      return next;
    });

  const dryRun = async () => {
    setReach(undefined);
    const answer = await run(
      (): Errors => (found.condition ? { condition: found.condition } : {}),
      () => api.post<{ devices: number }>('/push/dry-run', { ...(audience !== 'all' && { audience }), ...(condition && { condition }) }),
    );
    if (answer) setReach(answer.devices === 1 ? '1 device matches now' : `${answer.devices} devices match now`);
  };

  const choose = (next: Kind) => {
    setKind(next);
    setErrors({});
    setResult(undefined);
    if (next === 'template' && templateName === '' && templates.data?.templates[0]) setTemplateName(templates.data.templates[0].name);
  };

  return (
    <div class="columns push">
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <Section title="What kind of push">
          <div class="tabs" role="tablist">
            {KINDS.map(([k, label]) => (
              <button type="button" role="tab" key={k} aria-selected={kind === k} class={kind === k ? 'tab active' : 'tab'} data-kind={k} onClick={() => choose(k)}>
                {label}
              </button>
            ))}
          </div>

          {(kind === 'simple' || kind === 'template') && (
            <Field label="To" name="target" errors={errors} group>
              <span class="row">
                <select name="targetType" value={targetType} onChange={(e) => setTargetType((e.currentTarget as HTMLSelectElement).value as 'device' | 'user')}>
                  <option value="device">device id</option>
                  <option value="user">user id</option>
                </select>
                <input name="target" value={targetId} onInput={text(setTargetId)} placeholder={targetType === 'device' ? '0190a6f2-…' : 'alice@example.com'} />
              </span>
            </Field>
          )}

          {kind === 'multiple' && (
            <Field label="Targets (CSV)" name="targets" errors={errors} hint='a header row with "device" or "user" and a column per placeholder; up to 1000 lines'>
              <input
                name="targets"
                type="file"
                accept=".csv,text/csv"
                onChange={async (e) => {
                  const file = (e.currentTarget as HTMLInputElement).files?.[0];
                  setCsv(file ? { name: file.name, text: await file.text() } : undefined);
                }}
              />
            </Field>
          )}
          {kind === 'multiple' && targets && (
            <p class="hint" data-csv-summary>
              {csv?.name}: {targets.length} targets; columns {Object.keys(targets[0]?.values ?? {}).join(', ') || '(no values)'}
            </p>
          )}

          {kind === 'broadcast' && (
            <>
              <Field label="Audience" name="audience" errors={errors}>
                <select name="audience" value={audience} onChange={(e) => setAudience((e.currentTarget as HTMLSelectElement).value as typeof audience)}>
                  <option value="all">every device</option>
                  <option value="bound">devices bound to a user</option>
                  <option value="unbound">devices bound to no user</option>
                </select>
              </Field>
              <Field label="Conditions" name="condition" errors={errors} hint="none: every device of the audience" group>
                <ConditionBuilder rows={rows} setRows={setRows} combine={combine} setCombine={setCombine} />
              </Field>
              <p>
                <button type="button" class="secondary" onClick={() => void dryRun()}>
                  How many devices?
                </button>{' '}
                <span data-reach>{reach}</span>
              </p>
            </>
          )}
        </Section>

        <Section title="Message">
          {(kind === 'template' || kind === 'multiple') && (
            <Field label="Template" name="template" errors={errors}>
              <select name="template" value={templateName} onChange={(e) => setTemplateName((e.currentTarget as HTMLSelectElement).value)}>
                <option value="">{kind === 'multiple' ? '(none: write the message below)' : '(choose one)'}</option>
                {templates.data?.templates.map((t) => (
                  <option key={t.name} value={t.name}>
                    {t.name}
                  </option>
                ))}
              </select>
            </Field>
          )}
          {kind === 'template' && template && (
            <Field label="Values" name="values" errors={errors} group>
              <div class="values">
                {placeholders(template).length === 0 && <span class="muted">This template has no placeholders.</span>}
                {placeholders(template).map((p) => (
                  <label key={p} class="inline">
                    <span>{p}</span>
                    <input name={`values.${p}`} value={values[p] ?? ''} onInput={(e) => setValues({ ...values, [p]: (e.currentTarget as HTMLInputElement).value })} />
                  </label>
                ))}
              </div>
            </Field>
          )}
          <Field label="Type" name="pushType" errors={errors}>
            <select name="pushType" value={pushType} onChange={(e) => setPushType((e.currentTarget as HTMLSelectElement).value as typeof pushType)}>
              <option value="notification">notification (shown to the user)</option>
              <option value="silent">silent (handed to the app only)</option>
            </select>
          </Field>
          {!usesTemplate && (
            <>
              <Field label="Title" name="title" errors={errors} hint={kind === 'multiple' ? '{{column}} is filled from the CSV' : undefined}>
                <input name="title" value={title} onInput={text(setTitle)} />
              </Field>
              <Field label="Body" name="body" errors={errors}>
                <textarea name="body" rows={3} value={body} onInput={text(setBody)} />
              </Field>
              <Field label="Extras" name="extras" errors={errors} hint="name=value, one a line">
                <textarea name="extras" rows={2} value={extras} onInput={text(setExtras)} />
              </Field>
            </>
          )}
          <Field label="Payload (JSON, optional)" name="payload" errors={errors}>
            <textarea name="payload" rows={2} value={payload} onInput={text(setPayload)} placeholder='{"orderId": 7421}' />
          </Field>
        </Section>

        <Section title="Delivery">
          <div class="row-fields">
            <Field label="Valid for" name="ttl" errors={errors} hint="empty: the server's default (a day)" group>
              <span class="row">
                <input name="ttl" inputMode="numeric" value={ttl} onInput={text(setTtl)} size={6} />
                <select name="ttlUnit" value={unit} onChange={(e) => setUnit((e.currentTarget as HTMLSelectElement).value as keyof typeof UNITS)}>
                  <option value="s">seconds</option>
                  <option value="m">minutes</option>
                  <option value="h">hours</option>
                  <option value="d">days</option>
                </select>
              </span>
            </Field>
            <Field label="Channel" name="channel" errors={errors}>
              <select name="channel" value={channel} onChange={(e) => setChannel((e.currentTarget as HTMLSelectElement).value as typeof channel)}>
                <option value="auto">auto: socket, or the vendor when offline</option>
                <option value="socket">socket only</option>
                <option value="vendor">vendor channel only</option>
              </select>
            </Field>
            <Field label="Business id (optional)" name="businessId" errors={errors} hint="the same id never sends twice">
              <input name="businessId" value={businessId} onInput={text(setBusinessId)} />
            </Field>
          </div>
          <Field label="When" name="schedule" errors={errors} group>
            <span class="row">
              <select name="scheduleMode" value={scheduleMode} onChange={(e) => setScheduleMode((e.currentTarget as HTMLSelectElement).value as typeof scheduleMode)}>
                <option value="now">now</option>
                <option value="at">at (your time)</option>
                <option value="local">at the devices' local time</option>
              </select>
              {scheduleMode !== 'now' && <input name="scheduleAt" type="datetime-local" value={scheduleAt} onInput={text(setScheduleAt)} />}
            </span>
          </Field>
          <FormError errors={errors} />
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Sending…' : scheduleMode === 'now' ? 'Send' : 'Schedule'}
          </button>
        </Section>
      </form>

      <aside>
        <Section title="Preview">
          <MessagePreview
            content={rendered}
            pushType={pushType}
            {...(kind === 'multiple' && targets?.[0] && { note: 'as the first target of the CSV will see it' })}
            {...(kind === 'broadcast' && { note: 'every matching device sees the same message' })}
          />
        </Section>
        {result && (
          <Section title="Sent">
            <LiveStatus
              key={result.kind === 'message' ? result.messageId : result.kind === 'task' ? result.taskId : result.scheduleId}
              api={api}
              app={app}
              result={result}
            />
          </Section>
        )}
      </aside>
    </div>
  );
}
