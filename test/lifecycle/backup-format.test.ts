/**
 * The backup file format, without Redis: what BackupEncoder writes parses back to the same content,
 * and every kind of damage (not gzip, truncated, altered, foreign, another version, a bad line) is
 * refused with BACKUP_INVALID before anything could be restored. Signatures and the field rules
 * have their own file (backup-trust.test.ts).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupEncoder,
  type BackupHeader,
  type ExecutionLine,
} from '../../src/lifecycle/backup-format.js';
import { parseBackup } from '../../src/lifecycle/backup-reader.js';
import { CHECK_INTERVAL_BYTES, backupKey } from '../../src/lifecycle/backup-signature.js';
import { reason } from '../support/backups.js';

const key = backupKey('k'.repeat(32));

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
  data: { procedure: 'echo', params: { a: 1 }, id: '0b8f4a6e-2c1d-4e5f-9a7b-3c2d1e0f9a8b', name: '' },
  opts: { attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  timestamp: 1_700_000_000_000,
};

const delayed: ExecutionLine = {
  t: 'execution',
  n: 13,
  state: 'delayed',
  from: 'delayed',
  name: 'reports/sleep',
  data: {
    procedure: 'reports/sleep',
    params: null,
    id: '1b8f4a6e-2c1d-4e5f-9a7b-3c2d1e0f9a8b',
    name: 'nightly',
  },
  opts: {
    removeOnComplete: { count: 1000, age: 86_400 },
    removeOnFail: { count: 1000, age: 86_400 },
    deduplication: { id: 'name:nightly' },
  },
  timestamp: 1_700_000_000_000,
  dueAt: 1_700_000_060_000,
  priority: 2,
};

const session = { id: 'session-1', createdAtMs: '1', createdBy: 'host-a' };

/** The uncompressed text of a backup, written line by line as the backup service writes it. */
function text(options: { entries?: [string, string][]; executions?: ExecutionLine[] } = {}): Buffer {
  const encoder = new BackupEncoder(key);
  const parts = [
    encoder.line({ ...header, ...encoder.signature() }),
    encoder.line({ t: 'session', fields: session }),
    encoder.line({ t: 'sequence', value: 40 }),
    ...(options.entries ?? []).map(([name, json]) => encoder.entry(name, json)),
    ...(options.executions ?? []).map((x) => encoder.execution(x)),
    encoder.trailer(),
  ];
  return Buffer.concat(parts);
}

/** A backup signed with `key` made of `lines` after the header, sealed as if written so. */
function sealed(lines: unknown[], top: unknown = undefined): Buffer {
  const encoder = new BackupEncoder(key);
  const body = [top ?? { ...header, ...encoder.signature() }, ...lines].map((line) => encoder.line(line));
  return gzipSync(Buffer.concat([...body, encoder.trailer()]));
}

const read = (bytes: Buffer) => parseBackup(bytes, { key });

describe('a backup file', () => {
  it('parses back to what was written: header, session, counter, entries and executions', async () => {
    const entries: [string, string][] = [
      ['config', '{"mode":"on","list":[1,2,3]}'],
      ['odd "name"\n', '"a string"'],
      ['n', '42'],
    ];
    const parsed = await read(gzipSync(text({ entries, executions: [waiting, delayed] })));
    expect(parsed.header).toEqual({ ...header, signature: 'hmac-sha256', keyId: key?.id });
    expect(parsed.trust).toBe('verified');
    expect(parsed.session).toEqual(session);
    expect(parsed.sequence).toBe(40);
    expect([...parsed.entries]).toEqual(entries);
    expect(parsed.executions).toEqual([waiting, delayed]);
  });

  it('counts what it encodes, and seals the counts with the content', () => {
    const encoder = new BackupEncoder(key);
    encoder.entry('a', '1');
    encoder.entry('b', '2');
    encoder.execution(waiting);
    const trailer = JSON.parse(encoder.trailer().toString()) as Record<string, unknown>;
    expect(trailer).toMatchObject({ t: 'end', entries: 2, executions: 1 });
    expect(trailer.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(trailer.hmac).toMatch(/^[0-9a-f]{64}$/);
  });

  it('puts a checkpoint after every MiB of lines, and reads a large file back', async () => {
    const big = JSON.stringify({ blob: 'x'.repeat(100_000) });
    const entries = Array.from({ length: 40 }, (_, i): [string, string] => [`e${i}`, big]);
    const plain = text({ entries });
    const checks = plain
      .toString()
      .split('\n')
      .filter((l) => l.startsWith('{"t":"check"'));
    expect(checks.length).toBe(Math.floor((40 * big.length) / CHECK_INTERVAL_BYTES));
    expect(JSON.parse(checks[0] as string)).toMatchObject({
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      hmac: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const parsed = await read(gzipSync(plain));
    expect(parsed.entries.size).toBe(40);
  });

  it('holds an empty storage and no executions', async () => {
    const parsed = await read(gzipSync(text()));
    expect(parsed.entries.size).toBe(0);
    expect(parsed.executions).toEqual([]);
  });
});

describe('a file that is not a sound backup', () => {
  const good = text({ entries: [['k', '{"v":1}']], executions: [waiting] });

  it('is refused when it is not gzip', async () => {
    expect(await reason(read(good))).toMatch(/not gzip/);
    expect(await reason(read(Buffer.alloc(0)))).toMatch(/not gzip/);
  });

  it('is refused when the gzip data is cut', async () => {
    const zipped = gzipSync(good);
    expect(await reason(read(zipped.subarray(0, zipped.length - 10)))).toMatch(/damaged or truncated/);
  });

  it('is refused when the text ends before the trailer', async () => {
    const cut = good.subarray(0, good.lastIndexOf(10, good.length - 2) + 1);
    expect(await reason(read(gzipSync(cut)))).toMatch(/truncated/);
    expect(await reason(read(gzipSync(good.subarray(0, good.length - 1))))).toMatch(/truncated/);
  });

  it('is refused when one byte changed', async () => {
    const altered = Buffer.from(good);
    const at = altered.indexOf('"v":1');
    altered.write('"v":2', at);
    expect(await reason(read(gzipSync(altered)))).toMatch(/checksum does not match at line 6/);
  });

  it('is refused when lines are added after the trailer', async () => {
    const more = Buffer.concat([good, Buffer.from('{"t":"sequence","value":1}\n')]);
    expect(await reason(read(gzipSync(more)))).toMatch(/line 7 follows the trailer/);
  });

  it('is refused when it comes from something else, or from another format version', async () => {
    expect(await reason(read(gzipSync(Buffer.from('{"hello":"world"}\n'))))).toMatch(/foreign/);
    expect(await reason(read(gzipSync(Buffer.from('not json\n'))))).toMatch(/header is not JSON/);
    expect(await reason(read(gzipSync(Buffer.from('no newline at all'))))).toMatch(/no header line/);
    expect(await reason(read(gzipSync(Buffer.alloc(0))))).toMatch(/empty/);
    expect(await reason(read(sealed([], { ...header, version: BACKUP_VERSION + 1 })))).toMatch(
      `format version ${BACKUP_VERSION + 1}`,
    );
    const { node: _node, ...incomplete } = header;
    expect(await reason(read(sealed([], { ...incomplete, signature: 'none' })))).toMatch(
      /header is incomplete or malformed \(node: /,
    );
  });

  it('is refused when a line behind good seals is malformed, unknown, repeated or missing', async () => {
    const s = { t: 'session', fields: session };
    const q = { t: 'sequence', value: 1 };
    expect(await reason(read(sealed([s, q, { t: 'surprise' }])))).toMatch(/line 4 is of an unknown kind/);
    expect(await reason(read(sealed([s, q, [1, 2]])))).toMatch(/line 4 is not a JSON object/);
    expect(await reason(read(sealed([s, q, { ...waiting, n: -1 }])))).toMatch(/line 4 is malformed \(n: /);
    expect(await reason(read(sealed([s, q, s])))).toMatch(/line 4 is a second session line/);
    expect(await reason(read(sealed([s, q, q])))).toMatch(/line 4 is a second sequence line/);
    expect(await reason(read(sealed([q])))).toMatch(/no session identity/);
    expect(await reason(read(sealed([s])))).toMatch(/no execution counter/);
  });

  it('is refused when its trailer counts differ from its content, sealed or not', async () => {
    // An entry line written as a plain line is not counted: the sealed trailer claims 0 entries.
    expect(
      await reason(
        read(
          sealed([
            { t: 'session', fields: session },
            { t: 'sequence', value: 1 },
            { t: 'entry', k: 'k', v: 1 },
          ]),
        ),
      ),
    ).toMatch(/counts do not match/);
    // Counts changed after sealing break the seal.
    const lines = gunzipSync(gzipSync(good)).toString().trimEnd().split('\n');
    const trailer = JSON.parse(lines.pop() as string) as { entries: number };
    lines.push(JSON.stringify({ ...trailer, entries: trailer.entries + 1 }));
    expect(await reason(read(gzipSync(Buffer.from(`${lines.join('\n')}\n`))))).toMatch(
      /checksum does not match/,
    );
  });
});
