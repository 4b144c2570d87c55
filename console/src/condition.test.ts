import { describe, expect, it } from 'vitest';
import { buildCondition, type Row } from './condition';

const row = (kind: Row['kind'], name: string, value = '', not = false): Row => ({ kind, name, value, not });

describe('the condition builder', () => {
  it('makes the API condition: one term alone, several under and / or, not and in', () => {
    expect(buildCondition([], 'and')).toBeUndefined();
    expect(buildCondition([row('tag', 'vip')], 'and')).toEqual({ tag: 'vip' });
    expect(buildCondition([row('tag', 'vip'), row('attribute', 'tier', 'gold, silver', true), row('fact', 'platform', 'ios')], 'or')).toEqual({
      or: [{ tag: 'vip' }, { not: { attribute: 'tier', in: ['gold', 'silver'] } }, { fact: 'platform', equals: 'ios' }],
    });
  });

  it('refuses what the API would, naming the row', () => {
    expect(() => buildCondition([row('tag', 'vip'), row('tag', ' ')], 'and')).toThrow('condition 2: a tag name has 1 to 64 characters');
    expect(() => buildCondition([row('fact', 'colour', 'red')], 'and')).toThrow('condition 1: facts are platform');
    expect(() => buildCondition([row('attribute', 'tier', 'x'.repeat(129))], 'and')).toThrow('at most 128 characters');
  });
});
