import Type, { type TLiteral, type TSchema, type TUnion } from 'typebox';

/** A schema accepting exactly the strings of a const tuple, typed as their union. */
export function oneOf<const T extends readonly string[]>(values: T): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(values.map((v) => Type.Literal(v))) as never;
}

/** An object of named values whose names are 1 to `nameLength` characters (JSON Schema propertyNames). */
export function namedRecord<T extends TSchema>(value: T, nameLength: number, options: { description?: string } = {}) {
  return Type.Record(Type.String(), value, { ...options, propertyNames: { minLength: 1, maxLength: nameLength } } as Record<string, unknown>);
}
