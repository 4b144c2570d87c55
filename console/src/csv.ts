/**
 * The targets of a multiple push from a CSV file: a header row with a `device` or a `user` column
 * (or both, one filled per row) and a column per placeholder; one target per line after it.
 */
export interface CsvTarget {
  device?: string;
  user?: string;
  values?: Record<string, string>;
}

export class CsvError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(line === 0 ? message : `line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

/** RFC 4180 records: fields separated by commas, quoted with "" when they hold commas, quotes or line breaks. */
export function parseRecords(input: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const text = input.replace(/^\uFEFF/, '');
  while (i < text.length) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i += 1;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      if (c === '\r' && text[i + 1] === '\n') i += 1;
    } else field += c;
    i += 1;
  }
  if (quoted) throw new CsvError(records.length + 1, 'a quoted field is not closed');
  if (field !== '' || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records.filter((r) => !(r.length === 1 && r[0]?.trim() === ''));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Checks what the API would refuse, line by line, so the operator can fix the file before sending. */
export function parseTargets(input: string, maxTargets = 1000): CsvTarget[] {
  const [header, ...rows] = parseRecords(input);
  if (!header) throw new CsvError(0, 'the file is empty');
  const names = header.map((h) => h.trim());
  const device = names.indexOf('device');
  const user = names.indexOf('user');
  if (device === -1 && user === -1) throw new CsvError(1, 'the header needs a "device" or a "user" column');
  if (rows.length === 0) throw new CsvError(0, 'no targets after the header');
  if (rows.length > maxTargets) throw new CsvError(0, `at most ${maxTargets} targets in one push (this file has ${rows.length})`);
  return rows.map((row, i) => {
    const line = i + 2;
    if (row.length !== names.length) throw new CsvError(line, `${row.length} fields where the header has ${names.length}`);
    const d = device === -1 ? '' : (row[device] ?? '').trim();
    const u = user === -1 ? '' : (row[user] ?? '').trim();
    if ((d === '') === (u === '')) throw new CsvError(line, 'give exactly one of device and user');
    if (d !== '' && !UUID.test(d)) throw new CsvError(line, `device "${d}" is not a device id (a UUID)`);
    if (u.length > 128) throw new CsvError(line, 'a user id has at most 128 characters');
    const values: Record<string, string> = {};
    names.forEach((name, column) => {
      if (column !== device && column !== user && name !== '') values[name] = row[column] ?? '';
    });
    return { ...(d !== '' ? { device: d } : { user: u }), ...(Object.keys(values).length > 0 && { values }) };
  });
}
