/**
 * What a restore trusts, without Redis: signatures under SPROCD_BACKUP_KEY (a forged file with a
 * good unkeyed checksum is refused; an unsigned, other-key or version-1 file only with the
 * override), every field checked as the API would, and gzip bombs refused early with bounded
 * memory.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import zlib, { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupEncoder,
  BackupInvalidError,
  type ExecutionLine,
} from '../../src/lifecycle/backup-format.js';
import { parseBackup, readBackup, type ReadOptions } from '../../src/lifecycle/backup-reader.js';
import { backupKey, type BackupKey } from '../../src/lifecycle/backup-signature.js';
import { reason } from '../support/backups.js';

const key = backupKey('this-node-backup-key-0123456789abcdef') as BackupKey;
const otherKey = backupKey('another-deployment-key-0123456789ab') as BackupKey;
const limits = { maxEntryBytes: 1024 * 1024, maxParamsBytes: 1024 * 1024 };

const baseHeader = {
  format: BACKUP_FORMAT,
  version: BACKUP_VERSION,
  createdAt: '2026-01-02T03:04:05.678Z',
  prefix: 'acme',
  node: 'node-a',
  number: 7,
  trigger: 'manual',
};
const session = {
  t: 'session',
  fields: { id: 'a1b2c3d4-0000-4000-8000-000000000001', createdAtMs: '1700000000000' },
};
const sequence = { t: 'sequence', value: 40 };
const execution: ExecutionLine = {
  t: 'execution',
  n: 12,
  state: 'waiting',
  from: 'wait',
  name: 'billing/send',
  data: { procedure: 'billing/send', params: { a: 1 }, id: '0b8f4a6e-2c1d-4e5f-9a7b-3c2d1e0f9a8b', name: '' },
  opts: {
    attempts: 3,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { count: 1000, age: 86_400 },
    removeOnFail: { count: 1000, age: 86_400 },
  },
  timestamp: 1_700_000_000_000,
};

/**
 * A backup file: `lines` after the header, session and sequence, sealed by `sealWith` (no key:
 * unkeyed seals only). `header` overrides header fields (by default the signature fields match
 * `sealWith`).
 */
function file(
  lines: unknown[] = [],
  options: { sealWith?: BackupKey; header?: object; session?: unknown; sequence?: unknown } = {},
): Buffer {
  const encoder = new BackupEncoder(options.sealWith);
  const parts = [
    encoder.line({ ...baseHeader, ...encoder.signature(), ...options.header }),
    encoder.line(options.session ?? session),
    encoder.line(options.sequence ?? sequence),
  ];
  for (const line of lines as { t: string; k: string; v: unknown }[]) {
    if (line.t === 'entry' && Object.keys(line).length === 3) {
      parts.push(encoder.entry(line.k, JSON.stringify(line.v)));
    } else if (line.t === 'execution') {
      parts.push(encoder.execution(line as unknown as ExecutionLine));
    } else {
      parts.push(encoder.line(line));
    }
  }
  parts.push(encoder.trailer());
  return gzipSync(Buffer.concat(parts));
}

const signed = (lines: unknown[] = [], extra: Parameters<typeof file>[1] = {}) =>
  file(lines, { sealWith: key, ...extra });

const read = (bytes: Buffer, options: Partial<ReadOptions> = {}) =>
  parseBackup(bytes, { key, limits, ...options });

describe('SPROCD_BACKUP_KEY', () => {
  it('needs at least 32 bytes, and a refusal never shows the key', () => {
    const secret = 'short-secret-value';
    let err: unknown;
    try {
      loadSettings({ SPROCD_BACKUP_KEY: secret }, '/srv/app');
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toMatch(/SPROCD_BACKUP_KEY=\(hidden\): must be at least 32 bytes/);
    expect((err as Error).message).not.toContain(secret);
    expect(JSON.stringify((err as { details?: unknown }).details)).not.toContain(secret);
    expect(loadSettings({ SPROCD_BACKUP_KEY: 'x'.repeat(32) }, '/srv/app').backupKey).toBe('x'.repeat(32));
    expect(loadSettings({}, '/srv/app').backupKey).toBeUndefined();
  });

  it('is named in a header by an id that is not the key', () => {
    expect(key.id).toMatch(/^[0-9a-f]{16}$/);
    expect(key.id).not.toBe(otherKey.id);
    const text = zlib.gunzipSync(signed()).toString();
    expect(text).toContain(`"keyId":"${key.id}"`);
    expect(text).not.toContain(key.secret.toString());
  });
});

describe('a signed file', () => {
  it('signed with this node key is verified and restorable without the override', async () => {
    const parsed = await read(signed([{ t: 'entry', k: 'k', v: { a: 1 } }, execution]));
    expect(parsed.trust).toBe('verified');
    expect(parsed.entries.get('k')).toBe('{"a":1}');
    expect(parsed.executions).toEqual([execution]);
  });

  it('forged (valid unkeyed checksum, no HMAC) is refused, with or without the override', async () => {
    // Someone without the key changes an entry and reseals: the sha256 seals are right, the HMACs are missing.
    const forged = file([{ t: 'entry', k: 'k', v: { admin: true } }], {
      header: { signature: 'hmac-sha256', keyId: key.id },
    });
    const text = zlib.gunzipSync(forged).toString();
    expect(text).not.toContain('"hmac"');
    for (const allowUnsigned of [false, true]) {
      expect(await reason(read(forged, { allowUnsigned }))).toMatch(
        /signature does not match at line 5: the file was altered or forged/,
      );
    }
  });

  it('forged (valid unkeyed checksum, HMAC of another key under this key id) is refused', async () => {
    const forged = file([{ t: 'entry', k: 'k', v: 1 }], {
      sealWith: otherKey,
      header: { keyId: key.id },
    });
    expect(await reason(read(forged, { allowUnsigned: true }))).toMatch(/signature does not match/);
  });

  it('altered after signing, even with its checksums recomputed line by line, is refused at the first seal', async () => {
    const big = JSON.stringify('x'.repeat(200_000));
    const entries = Array.from({ length: 12 }, (_, i) => ({
      t: 'entry',
      k: `e${i}`,
      v: JSON.parse(big) as unknown,
    }));
    const text = zlib.gunzipSync(signed(entries)).toString();
    const lines = text.split('\n');
    // Change entry e1 (line 5); the first checkpoint comes after about a MiB of lines.
    lines[4] = lines[4]!.replace('"xxxx', '"yyyy');
    const firstCheck = lines.findIndex((l) => l.startsWith('{"t":"check"'));
    expect(firstCheck).toBeGreaterThan(4);
    const err = await reason(read(gzipSync(Buffer.from(lines.join('\n')))));
    expect(err).toMatch(new RegExp(`checksum does not match at line ${firstCheck + 1}`));
  });

  it('signed with another key is refused unless the override is given', async () => {
    const foreign = signed([{ t: 'entry', k: 'k', v: 1 }], { sealWith: otherKey });
    const err = await read(foreign).catch((e: unknown) => e as BackupInvalidError);
    expect(err).toBeInstanceOf(BackupInvalidError);
    expect((err as BackupInvalidError).message).toMatch(
      new RegExp(
        `signed with another key \\(key id ${otherKey.id}; SPROCD_BACKUP_KEY here has id ${key.id}\\)`,
      ),
    );
    expect((err as BackupInvalidError).message).toMatch(
      /allowUnsigned=true \(sprocd restore --allow-unsigned\)/,
    );
    expect((err as BackupInvalidError).details).toMatchObject({ override: 'allowUnsigned' });
    const parsed = await read(foreign, { allowUnsigned: true });
    expect(parsed.trust).toBe('other-key');
    expect(parsed.entries.get('k')).toBe('1');
  });

  it('is refused by a node without a key unless the override is given', async () => {
    expect(await reason(read(signed(), { key: undefined }))).toMatch(/this node has no SPROCD_BACKUP_KEY/);
    expect((await read(signed(), { key: undefined, allowUnsigned: true })).trust).toBe('other-key');
  });
});

describe('an unsigned file', () => {
  it('is refused without the override and accepted with it (still checked for damage)', async () => {
    const unsigned = file([{ t: 'entry', k: 'k', v: 1 }]);
    expect(await reason(read(unsigned))).toMatch(
      /it is not signed \(it was written where SPROCD_BACKUP_KEY was not set\)/,
    );
    const parsed = await read(unsigned, { allowUnsigned: true });
    expect(parsed.trust).toBe('unsigned');
    const damaged = Buffer.from(zlib.gunzipSync(unsigned).toString().replace('"v":1', '"v":2'));
    expect(await reason(read(gzipSync(damaged), { allowUnsigned: true }))).toMatch(/checksum does not match/);
  });

  it('of format version 1 is refused without the override and read with it', async () => {
    const lines = [
      { ...baseHeader, version: 1 },
      session,
      sequence,
      { t: 'entry', k: 'old', v: { kept: true } },
    ].map((l) => `${JSON.stringify(l)}\n`);
    const body = Buffer.from(lines.join(''));
    const sha256 = createHash('sha256').update(body).digest('hex');
    const v1 = gzipSync(
      Buffer.concat([
        body,
        Buffer.from(`${JSON.stringify({ t: 'end', entries: 1, executions: 0, sha256 })}\n`),
      ]),
    );
    expect(await reason(read(v1))).toMatch(/format version 1, written before backups were signed/);
    const parsed = await read(v1, { allowUnsigned: true });
    expect(parsed.trust).toBe('version-1');
    expect(parsed.entries.get('old')).toBe('{"kept":true}');
  });

  it('without its checkpoints is refused once more than a MiB goes unsealed', async () => {
    const big = 'x'.repeat(200_000);
    const entries = Array.from({ length: 12 }, (_, i) => ({ t: 'entry', k: `e${i}`, v: big }));
    const text = zlib.gunzipSync(file(entries)).toString();
    const stripped = text
      .split('\n')
      .filter((l) => !l.startsWith('{"t":"check"'))
      .join('\n');
    expect(await reason(read(gzipSync(Buffer.from(stripped)), { allowUnsigned: true }))).toMatch(
      /a checkpoint is missing before line \d+/,
    );
  });
});

describe('every field is checked as the API would', () => {
  const refused = async (lines: unknown[], pattern: RegExp, extra: Parameters<typeof file>[1] = {}) => {
    expect(await reason(read(signed(lines, extra)))).toMatch(pattern);
  };
  const withData = (data: object) => ({ ...execution, data: { ...(execution.data as object), ...data } });
  const deep = (levels: number): unknown => {
    let value: unknown = 0;
    for (let i = 0; i < levels; i++) {
      value = [value];
    }
    return value;
  };

  it('procedure and process names', async () => {
    await refused(
      [
        {
          ...execution,
          name: '../etc/passwd',
          data: { ...(execution.data as object), procedure: '../etc/passwd' },
        },
      ],
      /line 4 \(execution 12\): Bad procedure name "\.\.\/etc\/passwd"/,
    );
    await refused([withData({ procedure: 'other' })], /its data names procedure "other"/);
    await refused([withData({ name: '$local' })], /"name" must not start with "\$"/);
    await refused([withData({ id: 'not-a-uuid' })], /line 4 is malformed \(data\.id: /);
    await refused(
      [{ ...execution, opts: { deduplication: { id: 'name:x' } } }],
      /unique-name option does not match its process name/,
    );
  });

  it('JSON depth, in params and in storage entries', async () => {
    await refused(
      [withData({ params: deep(300) })],
      /execution 12\): params.* is nested deeper than 256 levels/,
    );
    await refused(
      [{ t: 'entry', k: 'deep', v: deep(300) }],
      /storage entry "deep" at v.* is nested deeper than 256 levels/,
    );
  });

  it('sizes: storage entries (SPROCD_STORAGE_MAX_ENTRY_BYTES) and params (SPROCD_BODY_LIMIT)', async () => {
    const small = { maxEntryBytes: 100, maxParamsBytes: 100 };
    const big = signed([{ t: 'entry', k: 'big', v: 'x'.repeat(200) }]);
    expect(await reason(read(big, { limits: small }))).toMatch(
      /storage entry "big" is 202 bytes of JSON, over SPROCD_STORAGE_MAX_ENTRY_BYTES \(100\)/,
    );
    const params = signed([withData({ params: 'x'.repeat(200) })]);
    expect(await reason(read(params, { limits: small }))).toMatch(
      /params are 202 bytes of JSON, over SPROCD_BODY_LIMIT \(100\)/,
    );
    // A line longer than any entry or params allowed is refused before it is parsed.
    const huge = signed([{ t: 'entry', k: 'huge', v: 'x'.repeat(100_000) }]);
    expect(await reason(read(huge, { limits: small }))).toMatch(/line 4 is longer than 65636 bytes/);
  });

  it('storage keys', async () => {
    await refused([{ t: 'entry', k: '', v: 1 }], /line 4: storage: .* is not a valid key: it is empty/);
    await refused([{ t: 'entry', k: 'k'.repeat(256), v: 1 }], /longer than 255 characters/);
    await refused([{ t: 'entry', k: 'a\uD800', v: 1 }], /lone UTF-16 surrogate/);
    await refused([{ t: 'entry', k: 'k', v: 1, extra: true }], /an entry line has exactly t, k and v/);
  });

  it('only the job options sprocd writes', async () => {
    await refused(
      [{ ...execution, opts: { lifo: true } }],
      /line 4 is malformed \(opts: Unrecognized key: "lifo"\)/,
    );
    await refused([{ ...execution, opts: { repeat: { every: 1 } } }], /Unrecognized key: "repeat"/);
    await refused([{ ...execution, opts: { backoff: { type: 'custom', delay: 1 } } }], /opts\.backoff\.type/);
    await refused([{ ...execution, opts: { attempts: 1_000_000 } }], /opts\.attempts/);
    await refused([{ ...execution, opts: { removeOnComplete: true } }], /opts\.removeOnComplete/);
    await refused([{ ...execution, surprise: 1 }], /Unrecognized key: "surprise"/);
  });

  it('safe-integer numbers and counters', async () => {
    await refused([], /line 3 is malformed \(value: /, { sequence: { t: 'sequence', value: 2 ** 53 } });
    await refused([], /line 3 is malformed/, { sequence: { t: 'sequence', value: 1.5 } });
    await refused([{ ...execution, n: 2 ** 53 + 2 }], /line 4 is malformed \(n: /);
    await refused([{ ...execution, timestamp: -1 }], /timestamp/);
    await refused([{ ...execution, priority: 10_000_000 }], /priority/);
    await refused([], /createdAtMs/, {
      session: { t: 'session', fields: { id: 's', createdAtMs: '99999999999999999' } },
    });
    await refused([], /Unrecognized key: "isAdmin"/, {
      session: { t: 'session', fields: { id: 's', createdAtMs: '1', isAdmin: 'yes' } },
    });
    expect(await reason(read(signed([], { header: { number: 2 ** 60 } })))).toMatch(
      /header is incomplete or malformed \(number: /,
    );
  });
});

describe('a gzip bomb', () => {
  /** Gzip of `head` followed by `total` bytes of `fill`, in small compressed chunks. */
  async function bomb(head: string, fill: Buffer, total: number): Promise<Buffer[]> {
    const gzip = zlib.createGzip({ level: 9 });
    const out: Buffer[] = [];
    gzip.on('data', (c: Buffer) => out.push(c));
    const done = new Promise((resolve) => gzip.on('end', resolve));
    gzip.write(head);
    for (let written = 0; written < total; written += fill.length) {
      if (!gzip.write(fill)) {
        await new Promise((resolve) => gzip.once('drain', resolve));
      }
    }
    gzip.end();
    await done;
    const all = Buffer.concat(out);
    const chunks: Buffer[] = [];
    for (let i = 0; i < all.length; i += 1024) {
      chunks.push(all.subarray(i, i + 1024));
    }
    return chunks;
  }

  /** Reads `chunks` as a restore does; returns the refusal, the bytes inflated and the memory growth. */
  async function feed(chunks: Buffer[]): Promise<{ reason: string; inflated: number; growth: number }> {
    const progress = { inflatedBytes: 0 };
    global.gc?.();
    const before = process.memoryUsage();
    const source = Readable.from(
      (function* () {
        yield* chunks;
      })(),
    );
    let peak = 0;
    const why = await reason(
      (async () => {
        for await (const _item of readBackup(source, { key, allowUnsigned: false, limits }, progress)) {
          const now = process.memoryUsage();
          peak = Math.max(peak, now.heapUsed + now.arrayBuffers - before.heapUsed - before.arrayBuffers);
        }
      })(),
    );
    const after = process.memoryUsage();
    peak = Math.max(peak, after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers);
    return { reason: why, inflated: progress.inflatedBytes, growth: peak };
  }

  const header = `${JSON.stringify({ ...baseHeader, signature: 'hmac-sha256', keyId: key.id })}\n`;
  const SIZE = 256 * 1024 ** 2;
  let zeros: Buffer[];
  let lines: Buffer[];

  beforeAll(async () => {
    // 256 MiB of zeros after a good header; 256 MiB of valid-looking entry lines under a header that
    // claims this node's key (the attacker has not got it, so no checkpoint can be shown).
    zeros = await bomb(header, Buffer.alloc(16 * 1024 * 1024), SIZE);
    const line = Buffer.from(`${JSON.stringify({ t: 'entry', k: 'a', v: 0 })}\n`.repeat(500_000));
    lines = await bomb(`${header}${JSON.stringify(session)}\n${JSON.stringify(sequence)}\n`, line, SIZE);
  }, 120_000);

  it('of one endless line is refused after a few MiB, with bounded memory', async () => {
    const size = zeros.reduce((n, c) => n + c.length, 0);
    expect(size).toBeLessThan(SIZE / 500); // over 500 times smaller than what it inflates to
    const { reason: why, inflated, growth } = await feed(zeros);
    expect(why).toMatch(/line 2 is longer than/);
    // The longest line allowed (1 MiB + 64 KiB) and what gunzip had ready: not the 256 MiB.
    expect(inflated).toBeLessThan(4 * 1024 * 1024);
    expect(growth).toBeLessThan(64 * 1024 * 1024);
  });

  it('of valid-looking lines is refused at the first checkpoint it cannot show, with bounded memory', async () => {
    const { reason: why, inflated, growth } = await feed(lines);
    expect(why).toMatch(/a checkpoint is missing/);
    // One checkpoint interval (1 MiB) and one longest line: not the 256 MiB.
    expect(inflated).toBeLessThan(4 * 1024 * 1024);
    expect(growth).toBeLessThan(64 * 1024 * 1024);
  });
});
