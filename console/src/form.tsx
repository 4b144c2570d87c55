/**
 * Forms: values, field-level errors (from the form's own checks first, then from the API's
 * `error.field`, which is the authority), and the fields that show them.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiFailure } from './api';

/** Field path (the API's dotted path, e.g. `target.device`) to message; '' is the form itself. */
export type Errors = Record<string, string>;

export interface FormOptions {
  /** The fields of this form, so that an API error about `a.b.c` lands on the nearest one (`a.b`). */
  fields: string[];
  /** Codes whose error is about one field although the API names none (EMPTY_NOTIFICATION: title). */
  codeFields?: Record<string, string>;
}

/** Where an API failure is shown: the field it names (or its nearest parent on the form), else the form. */
export function errorsOf(error: unknown, options: FormOptions): Errors {
  if (!(error instanceof ApiFailure)) return { '': error instanceof Error ? error.message : String(error) };
  const message = error.code === 'VALIDATION_FAILED' || error.code === 'INVALID_CHANNEL' ? error.message : `${error.message} (${error.code})`;
  let field = error.field ?? options.codeFields?.[error.code];
  while (field !== undefined && !options.fields.includes(field)) {
    const dot = field.lastIndexOf('.');
    field = dot === -1 ? undefined : field.slice(0, dot);
  }
  return { [field ?? '']: message };
}

/** A form's submit state: errors, busy flag, and `run`, which checks, sends and places errors. */
export function useSubmit(options: FormOptions) {
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  async function run<T>(check: () => Errors, send: () => Promise<T>): Promise<T | undefined> {
    const found = check();
    setErrors(found);
    if (Object.keys(found).length > 0) return undefined;
    setBusy(true);
    try {
      return await send();
    } catch (error) {
      setErrors(errorsOf(error, options));
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  return { errors, setErrors, busy, run };
}

/** A labelled control and its error; `group` for several controls (a <div role="group">, not a <label>). */
export function Field(props: { label: string; name: string; errors: Errors; hint?: string | undefined; group?: boolean; children: ComponentChildren }) {
  // An error stays until the field is edited; the next submit's errors (a new object) show again.
  const [editedAfter, setEditedAfter] = useState<Errors | undefined>();
  const error = editedAfter === props.errors ? undefined : props.errors[props.name];
  const edited = () => {
    if (error !== undefined) setEditedAfter(props.errors);
  };
  const inner = (
    <>
      <span class="label">{props.label}</span>
      {props.children}
      {props.hint && !error && <span class="hint">{props.hint}</span>}
      {error && (
        <span class="error" role="alert" data-error-for={props.name}>
          {error}
        </span>
      )}
    </>
  );
  const className = `field${error ? ' has-error' : ''}`;
  return props.group ? (
    <div class={className} role="group" aria-label={props.label} data-field={props.name} onInput={edited} onChange={edited}>
      {inner}
    </div>
  ) : (
    <label class={className} data-field={props.name} onInput={edited} onChange={edited}>
      {inner}
    </label>
  );
}

export function FormError({ errors }: { errors: Errors }) {
  const error = errors[''];
  return error ? (
    <p class="form-error" role="alert" data-error-for="">
      {error}
    </p>
  ) : null;
}

/** Input handlers that read the value of the element. */
export const text = (set: (value: string) => void) => (event: Event) => set((event.currentTarget as HTMLInputElement).value);

/** `key=value` lines (extras), checked like the API: names up to 64, values up to 1024 characters. */
export function parsePairs(input: string, field: string, errors: Errors): Record<string, string> | undefined {
  const pairs: Record<string, string> = {};
  for (const [i, raw] of input.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) {
      errors[field] = `line ${i + 1}: write name=value`;
      return undefined;
    }
    const name = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (name.length > 64 || value.length > 1024) {
      errors[field] = `line ${i + 1}: names have at most 64 characters, values 1024`;
      return undefined;
    }
    pairs[name] = value;
  }
  return Object.keys(pairs).length > 0 ? pairs : undefined;
}

export const pairsText = (pairs: Record<string, string> | undefined): string =>
  Object.entries(pairs ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
