/**
 * Who a broadcast reaches: one condition language that nests AND / OR / NOT over tags, attributes
 * and device facts. The gateway evaluates it in memory for connected devices; the control plane and
 * the catch-up path turn it into SQL over the devices table. Both readings live here, side by side.
 */
import Type, { type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { oneOf } from './schema.js';

export const DeviceFact = ['platform', 'osVersion', 'appVersion', 'sdkVersion', 'locale', 'timezone'] as const;
export type DeviceFact = (typeof DeviceFact)[number];

const Value = Type.String({ maxLength: 128 });
const Values = Type.Array(Value, { minItems: 1, maxItems: 100 });

export const MAX_CONDITION_DEPTH = 6;
export const MAX_CONDITION_NODES = 100;

export type Condition =
  | { tag: string }
  | { attribute: string; equals?: string; in?: string[] }
  | { fact: DeviceFact; equals?: string; in?: string[] }
  | { and: Condition[] }
  | { or: Condition[] }
  | { not: Condition };

export const ConditionSchema = Type.Cyclic(
  {
    Condition: Type.Union([
      Type.Object({ tag: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
      Type.Object(
        { attribute: Type.String({ minLength: 1, maxLength: 64 }), equals: Type.Optional(Value), in: Type.Optional(Values) },
        { additionalProperties: false },
      ),
      Type.Object({ fact: oneOf(DeviceFact), equals: Type.Optional(Value), in: Type.Optional(Values) }, { additionalProperties: false }),
      Type.Object({ and: Type.Array(Type.Ref('Condition'), { minItems: 1, maxItems: 50 }) }, { additionalProperties: false }),
      Type.Object({ or: Type.Array(Type.Ref('Condition'), { minItems: 1, maxItems: 50 }) }, { additionalProperties: false }),
      Type.Object({ not: Type.Ref('Condition') }, { additionalProperties: false }),
    ]),
  },
  'Condition',
) as TSchema;

const validator = Compile(ConditionSchema);

export class ConditionError extends Error {
  override name = 'ConditionError';
}

/** Checks shape, size and depth; the one boundary from unknown to Condition. */
export function parseCondition(value: unknown): Condition {
  if (!validator.Check(value)) {
    const first = [...validator.Errors(value)][0];
    throw new ConditionError(`condition ${first ? `${first.instancePath || '/'} ${first.message}` : 'is malformed'}`);
  }
  let nodes = 0;
  const walk = (c: Condition, depth: number): void => {
    nodes += 1;
    if (depth > MAX_CONDITION_DEPTH) throw new ConditionError(`condition nests deeper than ${MAX_CONDITION_DEPTH}`);
    if (nodes > MAX_CONDITION_NODES) throw new ConditionError(`condition has more than ${MAX_CONDITION_NODES} terms`);
    if ('and' in c) c.and.forEach((x) => walk(x, depth + 1));
    else if ('or' in c) c.or.forEach((x) => walk(x, depth + 1));
    else if ('not' in c) walk(c.not, depth + 1);
    else if (!('tag' in c) && (c.equals === undefined) === (c.in === undefined)) {
      throw new ConditionError('an attribute or fact term needs exactly one of equals or in');
    }
  };
  walk(value as Condition, 1);
  return value as Condition;
}

/** What a condition is evaluated against: a device's tags and attributes merged with its user's. */
export interface DeviceProfile {
  tags: ReadonlySet<string>;
  attributes: Readonly<Record<string, string>>;
  facts: Readonly<Record<DeviceFact, string>>;
}

const matchValue = (actual: string | undefined, c: { equals?: string; in?: string[] }): boolean =>
  actual !== undefined && (c.equals !== undefined ? actual === c.equals : (c.in ?? []).includes(actual));

export function matches(c: Condition, device: DeviceProfile): boolean {
  if ('tag' in c) return device.tags.has(c.tag);
  if ('attribute' in c) return matchValue(device.attributes[c.attribute], c);
  if ('fact' in c) return matchValue(device.facts[c.fact] || undefined, c);
  if ('and' in c) return c.and.every((x) => matches(x, device));
  if ('or' in c) return c.or.some((x) => matches(x, device));
  return !matches(c.not, device);
}

const FACT_COLUMNS: Record<DeviceFact, string> = {
  platform: 'platform',
  osVersion: 'os_version',
  appVersion: 'app_version',
  sdkVersion: 'sdk_version',
  locale: 'locale',
  timezone: 'timezone',
};

/**
 * The same condition as a SQL predicate over `devices` (alias d) left-joined to its user's
 * `user_profiles` (alias up): tags of either count, the user's attribute value wins. Values become
 * parameters appended to `params`; only column names from the fixed table above are spliced.
 */
export function conditionSql(c: Condition, params: unknown[]): string {
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  const valueSql = (column: string, v: { equals?: string; in?: string[] }): string =>
    v.equals !== undefined ? `${column} = ${param(v.equals)}` : `${column} = ANY(${param(v.in)}::text[])`;
  if ('tag' in c) {
    const tag = param(c.tag);
    return `(d.tags @> ARRAY[${tag}::text] OR coalesce(up.tags @> ARRAY[${tag}::text], false))`;
  }
  if ('attribute' in c) {
    const name = param(c.attribute);
    return valueSql(`coalesce(up.attributes ->> ${name}, d.attributes ->> ${name})`, c);
  }
  if ('fact' in c) return valueSql(`d.${FACT_COLUMNS[c.fact]}`, c);
  if ('and' in c) return `(${c.and.map((x) => conditionSql(x, params)).join(' AND ')})`;
  if ('or' in c) return `(${c.or.map((x) => conditionSql(x, params)).join(' OR ')})`;
  // NOT over a missing value is true: a device without the attribute is "not gold".
  return `(NOT coalesce(${conditionSql(c.not, params)}, false))`;
}
