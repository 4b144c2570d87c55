import Type, { type TLiteral, type TUnion } from 'typebox';

/** A schema accepting exactly the strings of a const tuple, typed as their union. */
export function oneOf<const T extends readonly string[]>(values: T): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(values.map((v) => Type.Literal(v))) as never;
}
