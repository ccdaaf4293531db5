/**
 * The backup file format, without Redis: what BackupEncoder writes parses back to the same content,
 * and every kind of damage (not gzip, truncated, altered, foreign, another version, a bad line) is
 * refused with BACKUP_INVALID before anything could be restored.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupEncoder,
  BackupInvalidError,
  parseBackup,
  type BackupHeader,
  type ExecutionLine,
} from '../../src/lifecycle/backup-format.js';

const header: BackupHeader = {
  format: BACKUP_FORMAT,
  version: BACKUP_VERSION,
  createdAt: '2026-01-02T03:04:05.678Z',
  prefix: 'acme',
  node: 'node-a',
  number: 7,
  trigger: 'manual',
};

const waiting: ExecutionLine = {
  t: 'execution',
  n: 12,
  state: 'waiting',
  from: 'active',
  name: 'echo',
  data: { procedure: 'echo', params: { a: 1 } },
  opts: { attempts: 3 },
  timestamp: 1_700_000_000_000,
};

const delayed: ExecutionLine = {
  t: 'execution',
  n: 13,
  state: 'delayed',
  from: 'delayed',
  name: 'sleep',
  data: { procedure: 'sleep' },
  opts: {},
  timestamp: 1_700_000_000_000,
  dueAt: 1_700_000_060_000,
  priority: 2,
};

/** The uncompressed text of a backup, written line by line as the backup service writes it. */
function text(options: { entries?: [string, string][]; executions?: ExecutionLine[] } = {}): Buffer {
  const encoder = new BackupEncoder();
  const parts = [
    encoder.line(header),
    encoder.line({ t: 'session', fields: { id: 'session-1', createdAtMs: '1' } }),
    encoder.line({ t: 'sequence', value: 40 }),
    ...(options.entries ?? []).map(([name, json]) => encoder.entry(name, json)),
    ...(options.executions ?? []).map((x) => encoder.execution(x)),
    encoder.trailer(),
  ];
  return Buffer.concat(parts);
}

/** A backup's text with its trailer recomputed, as if written so (to test checks behind the checksum). */
function resealed(lines: unknown[]): Buffer {
  const encoder = new BackupEncoder();
  const body = lines.map((line) => encoder.line(line));
  return gzipSync(Buffer.concat([...body, encoder.trailer()]));
}

async function reason(bytes: Buffer): Promise<string> {
  const err = await parseBackup(bytes).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BackupInvalidError);
  expect((err as BackupInvalidError).code).toBe('BACKUP_INVALID');
  return ((err as BackupInvalidError).details as { reason: string }).reason;
}

describe('a backup file', () => {
  it('parses back to what was written: header, session, counter, entries and executions', async () => {
    const entries: [string, string][] = [
      ['config', '{"mode":"on","list":[1,2,3]}'],
      ['odd "name"\n', '"a string"'],
      ['n', '42'],
    ];
    const parsed = await parseBackup(gzipSync(text({ entries, executions: [waiting, delayed] })));
    expect(parsed.header).toEqual(header);
    expect(parsed.session).toEqual({ id: 'session-1', createdAtMs: '1' });
    expect(parsed.sequence).toBe(40);
    expect([...parsed.entries]).toEqual(entries);
    expect(parsed.executions).toEqual([waiting, delayed]);
  });

  it('counts what it encodes', () => {
    const encoder = new BackupEncoder();
    encoder.entry('a', '1');
    encoder.entry('b', '2');
    encoder.execution(waiting);
    const trailer = JSON.parse(encoder.trailer().toString()) as Record<string, unknown>;
    expect(trailer).toMatchObject({ t: 'end', entries: 2, executions: 1 });
    expect(trailer.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('holds an empty storage and no executions', async () => {
    const parsed = await parseBackup(gzipSync(text()));
    expect(parsed.entries.size).toBe(0);
    expect(parsed.executions).toEqual([]);
  });
});

describe('a file that is not a sound backup', () => {
  const good = text({ entries: [['k', '{"v":1}']], executions: [waiting] });

  it('is refused when it is not gzip', async () => {
    expect(await reason(good)).toMatch(/not gzip/);
    expect(await reason(Buffer.alloc(0))).toMatch(/not gzip/);
  });

  it('is refused when the gzip data is cut', async () => {
    const zipped = gzipSync(good);
    expect(await reason(zipped.subarray(0, zipped.length - 10))).toMatch(/damaged or truncated/);
  });

  it('is refused when the text ends before the trailer', async () => {
    const cut = good.subarray(0, good.lastIndexOf(10, good.length - 2) + 1);
    expect(await reason(gzipSync(cut))).toMatch(/truncated|last line is not the trailer/);
    expect(await reason(gzipSync(good.subarray(0, good.length - 1)))).toMatch(/truncated/);
  });

  it('is refused when one byte changed', async () => {
    const altered = Buffer.from(good);
    const at = altered.indexOf('"v":1');
    altered.write('"v":2', at);
    expect(await reason(gzipSync(altered))).toMatch(/checksum does not match/);
  });

  it('is refused when it comes from something else, or from another format version', async () => {
    expect(await reason(gzipSync(Buffer.from('{"hello":"world"}\n')))).toMatch(/foreign/);
    expect(await reason(gzipSync(Buffer.from('not json\n')))).toMatch(/header is not JSON/);
    expect(await reason(gzipSync(Buffer.from('no newline at all')))).toMatch(/no header line/);
    expect(
      await reason(
        resealed([
          { ...header, version: BACKUP_VERSION + 1 },
          { t: 'sequence', value: 1 },
        ]),
      ),
    ).toMatch(`format version ${BACKUP_VERSION + 1}`);
    const { node: _node, ...incomplete } = header;
    expect(await reason(resealed([incomplete]))).toMatch(/header is incomplete/);
  });

  it('is refused when a line behind a good checksum is malformed, unknown or missing', async () => {
    const session = { t: 'session', fields: { id: 's' } };
    const sequence = { t: 'sequence', value: 1 };
    expect(await reason(resealed([header, session, sequence, { t: 'surprise' }]))).toMatch(
      /line 4 is of an unknown kind/,
    );
    expect(await reason(resealed([header, session, sequence, { ...waiting, n: -1 }]))).toMatch(
      /line 4 is malformed \(n: /,
    );
    expect(await reason(resealed([header, sequence]))).toMatch(/no session identity/);
    expect(await reason(resealed([header, session]))).toMatch(/no execution counter/);
  });

  it('is refused when its trailer counts differ from its content', async () => {
    const zipped = gzipSync(good);
    const unzipped = gunzipSync(zipped);
    const lines = unzipped.toString().trimEnd().split('\n');
    const trailer = JSON.parse(lines.pop() as string) as { entries: number };
    // Same checksum (it covers the lines before the trailer), one entry more claimed.
    lines.push(JSON.stringify({ ...trailer, entries: trailer.entries + 1 }));
    expect(await reason(gzipSync(Buffer.from(`${lines.join('\n')}\n`)))).toMatch(/counts do not match/);
  });
});
