/** Small pieces several pages use. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

/** A secret shown this once: the API never shows it again. */
export function SecretOnce(props: { title: string; rows: [string, string][]; secret: string; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="secret-once" role="status">
      <h3>{props.title}</h3>
      <dl>
        {props.rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>
              <code>{v}</code>
            </dd>
          </div>
        ))}
        <div>
          <dt>Secret</dt>
          <dd>
            <code class="secret" data-secret>
              {props.secret}
            </code>
          </dd>
        </div>
      </dl>
      <p class="warning">Store the secret now: it is shown this once and cannot be read again.</p>
      <button
        type="button"
        onClick={() => {
          void navigator.clipboard?.writeText(props.secret).then(() => setCopied(true));
        }}
      >
        {copied ? 'Copied' : 'Copy secret'}
      </button>{' '}
      <button type="button" class="secondary" onClick={props.onDone}>
        I have stored it
      </button>
    </div>
  );
}

/** A button that asks once more before doing something that cannot be undone. */
export function ConfirmButton(props: { label: string; confirm: string; onConfirm: () => void; disabled?: boolean; class?: string }) {
  const [asking, setAsking] = useState(false);
  return asking ? (
    <span class="confirm">
      <button type="button" class="danger" onClick={() => (setAsking(false), props.onConfirm())}>
        {props.confirm}
      </button>
      <button type="button" class="secondary" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  ) : (
    <button type="button" class={props.class ?? 'secondary'} disabled={props.disabled} onClick={() => setAsking(true)}>
      {props.label}
    </button>
  );
}

/** Loads something for the page, again whenever `key` changes; `reload` loads it once more. */
export function useLoad<T>(load: () => Promise<T>, key: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: Error) => live && setState({ error: error.message, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...key, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** Calls `poll` every `ms` while `active`, and when `active` turns on. */
export function usePoll(poll: () => void, ms: number, active: boolean, key: unknown[] = []) {
  const saved = useRef(poll);
  saved.current = poll;
  useEffect(() => {
    if (!active) return undefined;
    saved.current();
    const timer = setInterval(() => saved.current(), ms);
    return () => clearInterval(timer);
  }, [active, ms, ...key]);
}

export const Loading = ({ what }: { what: string }) => <p class="loading">Loading {what}…</p>;
export const Failed = ({ error }: { error: string }) => (
  <p class="form-error" role="alert">
    {error}
  </p>
);

export function Section(props: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="panel">
      <header>
        <h2>{props.title}</h2>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}

export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : '–');
