/**
 * The README's "five-minute tour", run from README.md itself: its procedure is the shipped
 * jobs/hello.ts, and each command of its shell blocks runs against a fresh node started as
 * `npm start` would (bin/sprocd.js start, the repository's jobs/ and lifecycle/), its output compared
 * with the `# …` lines under it. An edit of the tour that stops being true fails here.
 *
 * How the tour's text is read: a shell line is a command (a trailing `\` continues it, a trailing
 * `# …` is a remark); the `# ` lines right under it are its output. Output that starts with `{` or
 * `[` is compared as JSON: `"…"` stands for any value, and a `…` member lets an object have more
 * members; other output is compared line by line, `…` standing for any text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ROOT, spawnNode, type ChildNode } from './support/node.js';
import { runSprocd } from './support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from './support/redis.js';

/** One command of the tour, with the output the README shows for it (none: only exit 0 is checked). */
interface Step {
  command: string;
  words: string[];
  expected: string[];
}

/** The tour: from its heading to the next second-level heading. */
function tourText(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## A five-minute tour');
  expect(start, 'the README has its tour').toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The fenced blocks of `language` in `text`. */
function blocks(text: string, language: string): string[] {
  const found: string[] = [];
  const fence = new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g');
  for (const match of text.matchAll(fence)) {
    found.push(match[1] as string);
  }
  return found;
}

/**
 * Splits a shell line into words as sh does for the quoting the tour uses ('…', "…", \ escapes),
 * stopping at a remark (an unquoted `#` after a blank).
 */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "'" || c === '"') {
      const close = line.indexOf(c, i + 1);
      expect(close, `closing ${c} in: ${line}`).toBeGreaterThan(i);
      word = (word ?? '') + line.slice(i + 1, close);
      i = close;
    } else if (c === '\\') {
      word = (word ?? '') + (line[++i] ?? '');
    } else if (c === ' ' || c === '\t') {
      if (word !== undefined) {
        words.push(word);
      }
      word = undefined;
    } else if (c === '#' && word === undefined) {
      break;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) {
    words.push(word);
  }
  return words;
}

/** The commands of the tour's shell blocks, in order, each with its expected output. */
function tourSteps(text: string): Step[] {
  const steps: Step[] = [];
  for (const block of blocks(text, 'sh')) {
    let pending = '';
    for (const line of block.split('\n')) {
      if (pending === '' && /^#( |$)/.test(line)) {
        const last = steps.at(-1);
        expect(last, `output before any command: ${line}`).toBeDefined();
        last?.expected.push(line.slice(2));
        continue;
      }
      if (line.trim() === '') {
        continue;
      }
      if (line.endsWith('\\')) {
        pending += `${line.slice(0, -1)} `;
        continue;
      }
      const command = pending + line;
      pending = '';
      steps.push({ command, words: shellWords(command), expected: [] });
    }
  }
  return steps;
}

/** The mismatches between `actual` and the README's JSON `expected` (with its `…`), as paths. */
function jsonMismatches(expected: unknown, actual: unknown, at = '$'): string[] {
  if (expected === '…') {
    return [];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
    }
    return expected.flatMap((e, i) => jsonMismatches(e, actual[i], `${at}[${i}]`));
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) {
      return [`${at}: expected an object, got ${JSON.stringify(actual)}`];
    }
    const open = '…' in expected;
    const wanted = Object.entries(expected).filter(([key]) => key !== '…');
    const problems = wanted.flatMap(([key, value]) =>
      key in actual
        ? jsonMismatches(value, (actual as Record<string, unknown>)[key], `${at}.${key}`)
        : [`${at}.${key}: missing`],
    );
    if (!open) {
      const extra = Object.keys(actual).filter((key) => !(key in expected));
      problems.push(...extra.map((key) => `${at}.${key}: not in the README`));
    }
    return problems;
  }
  return Object.is(expected, actual)
    ? []
    : [`${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

/** Whether `stdout` is what the README shows; the reason when not. */
function compare(expected: string[], stdout: string): string | undefined {
  const shown = expected.join('\n');
  if (/^[[{]/.test(shown)) {
    // `, …}` (more members) becomes a member named … so that the text parses as JSON.
    const parsedExpected = JSON.parse(
      shown.replace(/,\s*…\s*}/g, ', "…": "…"}').replace(/{\s*…\s*}/g, '{"…": "…"}'),
    );
    let parsedActual: unknown;
    try {
      parsedActual = JSON.parse(stdout);
    } catch {
      return `not JSON: ${stdout}`;
    }
    const problems = jsonMismatches(parsedExpected, parsedActual);
    return problems.length === 0 ? undefined : `${problems.join('; ')} (got ${stdout.trim()})`;
  }
  const lines = stdout.replace(/\n$/, '').split('\n');
  const patterns = expected.map(
    (line) =>
      new RegExp(
        `^${line
          .split('…')
          .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*')}$`,
      ),
  );
  const same = lines.length === patterns.length && patterns.every((p, i) => p.test(lines[i] as string));
  return same ? undefined : `expected:\n${shown}\ngot:\n${stdout}`;
}

/** Runs a `curl -s URL [-H 'k: v'] [-d BODY]` of the tour with fetch, against `base`. */
async function curl(words: string[], base: string): Promise<string> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  let url: string | undefined;
  for (let i = 1; i < words.length; i++) {
    const word = words[i] as string;
    if (word === '-s') {
      continue;
    } else if (word === '-H') {
      const [name, ...value] = (words[++i] as string).split(':');
      headers[(name as string).trim()] = value.join(':').trim();
    } else if (word === '-d') {
      body = words[++i];
    } else if (!word.startsWith('-') && url === undefined) {
      url = word;
    } else {
      throw new Error(`the tour's curl uses ${word}, which this test does not run`);
    }
  }
  expect(url, 'the URL of a curl').toMatch(/^localhost:8080\//);
  const res = await fetch(`${base}${(url as string).slice('localhost:8080'.length)}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers,
    body,
  });
  return res.text();
}

const prefix = uniquePrefix('tour');
let node: ChildNode;

beforeAll(async () => {
  // `npm start` in this folder on a fresh deployment: the shipped jobs/ and lifecycle/, and a key
  // prefix nobody used (the embedded Redis of a first start is as empty).
  node = await spawnNode(prefix, {
    SPROCD_JOBS_DIR: path.join(ROOT, 'jobs'),
    SPROCD_LIFECYCLE_DIR: path.join(ROOT, 'lifecycle'),
  });
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe("the README's tour", () => {
  const text = tourText();

  it('shows the shipped jobs/hello.ts as it is', () => {
    const [hello] = blocks(text, 'ts');
    expect(hello).toBe(fs.readFileSync(path.join(ROOT, 'jobs', 'hello.ts'), 'utf8'));
  });

  it('prints what it says, command after command', async () => {
    const steps = tourSteps(text);
    expect(steps.length).toBeGreaterThanOrEqual(8);
    for (const step of steps) {
      const [program] = step.words;
      const runOnce = async (): Promise<string> => {
        if (program === 'curl') {
          return curl(step.words, node.url);
        }
        expect(program, `a command the tour may use: ${step.command}`).toBe('./bin/sprocd.js');
        const result = await runSprocd(step.words.slice(1), { env: { SPROCD_URL: node.url } });
        expect(result.code, `${step.command}\n${result.stderr}`).toBe(0);
        return result.stdout;
      };
      if (step.expected.length === 0) {
        await runOnce();
        continue;
      }
      // A person types the next command a moment after the last: a read may be repeated until the
      // execution it shows got where the README says (a write runs once).
      const isRead = (program === 'curl' && !step.words.includes('-d')) || step.words[1] === 'get';
      if (isRead) {
        await vi.waitFor(
          async () => expect(compare(step.expected, await runOnce()), step.command).toBeUndefined(),
          {
            timeout: 10_000,
            interval: 100,
          },
        );
      } else {
        expect(compare(step.expected, await runOnce()), step.command).toBeUndefined();
      }
    }
  });
});
