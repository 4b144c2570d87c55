import { describe, expect, it } from 'vitest';
import { fill, missingValues, placeholders, render } from './placeholders';

describe('placeholders, by the rules of the API', () => {
  const template = { title: 'Hi {{ name }}', body: '{{order}} ships {{name}}; {{first name}} stays text', extras: { link: '/o/{{order}}' } };

  it('lists names in order of first appearance', () => {
    expect(placeholders(template)).toEqual(['name', 'order']);
  });

  it('fills what has a value and leaves the rest as written', () => {
    expect(render(template, { name: 'Ana' })).toEqual({
      title: 'Hi Ana',
      body: '{{order}} ships Ana; {{first name}} stays text',
      extras: { link: '/o/{{order}}' },
    });
    expect(fill('{{a}}{{b}}', { a: '{{b}}', b: 'x' })).toBe('{{b}}x'); // values are not searched again
    expect(missingValues(template, { name: '' })).toEqual(['order']);
  });
});
