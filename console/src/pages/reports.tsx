/**
 * Reports: sent, delivered, arrived and opened over time, and the display and open rates, per
 * minute, hour or day, filtered by platform, app version, channel and push type.
 */
import { useState } from 'preact/hooks';
import { v1 } from '../api';
import { LineChart } from '../chart';
import { Field, FormError, text, useSubmit, type Errors } from '../form';
import { Failed, Loading, Section, usePoll } from '../widgets';

type Granularity = 'minute' | 'hour' | 'day';
const WINDOWS: Record<Granularity, [number, string][]> = {
  minute: [[60, 'last hour'], [180, 'last 3 hours'], [360, 'last 6 hours']],
  hour: [[24, 'last 24 hours'], [72, 'last 3 days'], [168, 'last 7 days']],
  day: [[7, 'last 7 days'], [30, 'last 30 days'], [90, 'last 90 days']],
};
const STEP_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const KINDS = ['sent', 'delivered', 'arrived', 'opened'] as const;
const COLORS: Record<string, string> = { sent: '#8c6bb1', delivered: '#2b8cbe', arrived: '#41ab5d', opened: '#f16913', display: '#41ab5d', open: '#f16913' };

interface SeriesReport {
  times: string[];
  series: { key: Record<string, string>; counts: Record<string, number[]> }[];
}

interface Filters {
  granularity: Granularity;
  window: number;
  platform: string;
  appVersion: string;
  channel: string;
  pushType: string;
}

const label = (granularity: Granularity) => (iso: string) => {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (granularity === 'minute') return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (granularity === 'hour') return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}h`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
};

const ratio = (part: number, whole: number): number | null => (whole === 0 ? null : part / whole);
const percent = (value: number) => `${Math.round(value * 100)}%`;

/** A comma-separated filter as the API takes it: values without spaces around them, none empty. */
const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '')
    .join(',');

export function ReportsPage({ app }: { app: string }) {
  const api = v1(app);
  const [form, setForm] = useState<Filters>({ granularity: 'minute', window: 60, platform: '', appVersion: '', channel: '', pushType: '' });
  const [applied, setApplied] = useState(form);
  const [report, setReport] = useState<{ data?: SeriesReport; error?: string; at?: Date }>({});
  const [live, setLive] = useState(true);
  const { errors, run } = useSubmit({ fields: ['granularity', 'from', 'platform', 'appVersion', 'channel', 'pushType'] });

  const load = () => {
    const to = Date.now();
    const from = to - applied.window * STEP_MS[applied.granularity];
    api
      .get<SeriesReport>('/reports/series', {
        granularity: applied.granularity,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        kinds: KINDS.join(','),
        platform: list(applied.platform),
        appVersion: list(applied.appVersion),
        channel: list(applied.channel),
        pushType: applied.pushType,
      })
      .then(
        (data) => setReport({ data, at: new Date() }),
        (error: Error) => setReport({ error: error.message }),
      );
  };
  usePoll(load, 10_000, live, [applied]);

  const set = (name: keyof Filters) => (value: string) => setForm({ ...form, [name]: name === 'window' ? Number(value) : value });
  const check = (): Errors => {
    const e: Errors = {};
    for (const name of ['platform', 'appVersion', 'channel'] as const) if (form[name].length > 2000) e[name] = 'at most 2000 characters';
    if (/[^a-z,\s]/.test(form.platform)) e.platform = 'platforms are android, ios, web, harmony (comma-separated)';
    return e;
  };

  const totals = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<(typeof KINDS)[number], number>;
  const perTime = KINDS.map(() => [] as number[]);
  const data = report.data;
  if (data) {
    data.times.forEach((_, i) =>
      KINDS.forEach((kind, k) => {
        const n = data.series.reduce((sum, s) => sum + (s.counts[kind]?.[i] ?? 0), 0);
        (perTime[k] as number[])[i] = n;
        totals[kind] += n;
      }),
    );
  }
  const [, delivered, arrived, opened] = perTime as [number[], number[], number[], number[]];

  return (
    <>
      <Section title="Filters">
        <form
          class="inline-form filters"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void run(check, async () => {
              setApplied(form);
              setLive(true);
            });
          }}
        >
          <Field label="Per" name="granularity" errors={errors}>
            <select name="granularity" value={form.granularity} onChange={(e) => {
              const granularity = (e.currentTarget as HTMLSelectElement).value as Granularity;
              setForm({ ...form, granularity, window: (WINDOWS[granularity][0] as [number, string])[0] });
            }}>
              <option value="minute">minute</option>
              <option value="hour">hour</option>
              <option value="day">day</option>
            </select>
          </Field>
          <Field label="Period" name="from" errors={errors}>
            <select name="window" value={String(form.window)} onChange={(e) => set('window')((e.currentTarget as HTMLSelectElement).value)}>
              {WINDOWS[form.granularity].map(([n, name]) => (
                <option key={n} value={String(n)}>{name}</option>
              ))}
            </select>
          </Field>
          <Field label="Platform" name="platform" errors={errors}>
            <input name="platform" value={form.platform} onInput={text(set('platform'))} placeholder="ios, android" size={12} />
          </Field>
          <Field label="App version" name="appVersion" errors={errors}>
            <input name="appVersion" value={form.appVersion} onInput={text(set('appVersion'))} placeholder="2.3.0" size={10} />
          </Field>
          <Field label="Channel" name="channel" errors={errors}>
            <input name="channel" value={form.channel} onInput={text(set('channel'))} placeholder="socket, apns" size={12} />
          </Field>
          <Field label="Push type" name="pushType" errors={errors}>
            <select name="pushType" value={form.pushType} onChange={(e) => set('pushType')((e.currentTarget as HTMLSelectElement).value)}>
              <option value="">all</option>
              <option value="notification">notification</option>
              <option value="silent">silent</option>
            </select>
          </Field>
          <button type="submit">Show</button>
          <label class="inline">
            <input type="checkbox" checked={live} onChange={(e) => setLive((e.currentTarget as HTMLInputElement).checked)} /> refresh every 10 s
          </label>
          <FormError errors={errors} />
        </form>
      </Section>
      {report.error && <Failed error={report.error} />}
      {!data && !report.error && <Loading what="the report" />}
      {data && (
        <>
          <Section title="Totals" actions={<span class="hint">as of {report.at?.toLocaleTimeString()}</span>}>
            <ul class="counts" data-totals>
              {KINDS.map((k) => (
                <li key={k} data-total={k}>
                  <strong>{totals[k]}</strong> {k}
                </li>
              ))}
              <li data-total="display-rate">
                <strong>{totals.delivered === 0 ? '–' : percent(totals.arrived / totals.delivered)}</strong> shown of delivered
              </li>
              <li data-total="open-rate">
                <strong>{totals.arrived === 0 ? '–' : percent(totals.opened / totals.arrived)}</strong> opened of shown
              </li>
            </ul>
          </Section>
          <Section title="Over time">
            <LineChart
              title="Events"
              times={data.times}
              timeLabel={label(applied.granularity)}
              series={KINDS.map((kind, k) => ({ name: kind, color: COLORS[kind] as string, values: perTime[k] as number[] }))}
            />
            <LineChart
              title="Rates"
              times={data.times}
              timeLabel={label(applied.granularity)}
              max={1}
              format={percent}
              series={[
                { name: 'shown of delivered', color: COLORS.display as string, values: data.times.map((_, i) => ratio(arrived[i] ?? 0, delivered[i] ?? 0)) },
                { name: 'opened of shown', color: COLORS.open as string, values: data.times.map((_, i) => ratio(opened[i] ?? 0, arrived[i] ?? 0)) },
              ]}
            />
          </Section>
        </>
      )}
    </>
  );
}
