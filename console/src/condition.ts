/**
 * The broadcast condition builder's rows, turned into the API's condition (docs/api.md section 6):
 * each row a tag, attribute or fact term, optionally negated, all of them combined with and / or.
 */
export type TermKind = 'tag' | 'attribute' | 'fact';

export interface Row {
  kind: TermKind;
  name: string;
  /** For attribute and fact terms: one value, or several separated by commas (`in`). */
  value: string;
  not: boolean;
}

export const FACTS = ['platform', 'osVersion', 'appVersion', 'sdkVersion', 'locale', 'timezone'] as const;

export class ConditionInputError extends Error {
  constructor(
    readonly row: number,
    message: string,
  ) {
    super(`condition ${row + 1}: ${message}`);
    this.name = 'ConditionInputError';
  }
}

function term(row: Row, i: number): object {
  const name = row.name.trim();
  if (name === '' || name.length > 64) throw new ConditionInputError(i, `a ${row.kind} name has 1 to 64 characters`);
  if (row.kind === 'tag') return { tag: name };
  if (row.kind === 'fact' && !(FACTS as readonly string[]).includes(name)) throw new ConditionInputError(i, `facts are ${FACTS.join(', ')}`);
  const values = row.value.split(',').map((v) => v.trim());
  if (values.some((v) => v.length > 128)) throw new ConditionInputError(i, 'values have at most 128 characters');
  if (values.length > 100) throw new ConditionInputError(i, 'at most 100 values');
  const key = row.kind === 'attribute' ? 'attribute' : 'fact';
  return values.length === 1 ? { [key]: name, equals: values[0] } : { [key]: name, in: values };
}

/** The condition of these rows, or undefined when there are none (every device). */
export function buildCondition(rows: Row[], combine: 'and' | 'or'): object | undefined {
  if (rows.length > 50) throw new ConditionInputError(50, 'at most 50 conditions');
  const terms = rows.map((row, i) => (row.not ? { not: term(row, i) } : term(row, i)));
  if (terms.length === 0) return undefined;
  return terms.length === 1 ? terms[0] : { [combine]: terms };
}
