import { describe, expect, it } from 'vitest';
import { CsvError, parseRecords, parseTargets } from './csv';

const DEVICE = '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b';

describe('CSV targets', () => {
  it('reads quoted fields with commas, quotes and line breaks, and CRLF lines', () => {
    expect(parseRecords('a,b\r\n"x, y","say ""hi""\nthere"\r\n')).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"\nthere'],
    ]);
  });

  it('turns rows into targets with their placeholder values', () => {
    expect(parseTargets(`\uFEFFuser,device,name\nana,,Ana\n,${DEVICE},Bo\n`)).toEqual([
      { user: 'ana', values: { name: 'Ana' } },
      { device: DEVICE, values: { name: 'Bo' } },
    ]);
    expect(parseTargets('user\nana')).toEqual([{ user: 'ana' }]);
  });

  it('names the line of what the API would refuse', () => {
    const refused: [string, string][] = [
      ['', 'the file is empty'],
      ['name\nAna', 'line 1: the header needs a "device" or a "user" column'],
      ['user,name\n', 'no targets after the header'],
      ['user,name\nana', 'line 2: 1 fields where the header has 2'],
      [`user,device\nana,${DEVICE}`, 'line 2: give exactly one of device and user'],
      ['device\nnot-a-uuid', 'line 2: device "not-a-uuid" is not a device id (a UUID)'],
      ['user\n"open', 'line 2: a quoted field is not closed'],
    ];
    for (const [input, message] of refused) expect(() => parseTargets(input)).toThrow(new CsvError(0, message).message);
    expect(() => parseTargets(`user\n${'u\n'.repeat(3)}`, 2)).toThrow('at most 2 targets');
  });
});
