/** The client's event-stream parser (no server): chunk boundaries, line endings, fields. */
import { describe, expect, it } from 'vitest';
import { SseParser } from '../../src/events/sse-reader.js';

describe('SseParser', () => {
  it('reads frames split anywhere, with \\n, \\r\\n or \\r line ends', () => {
    const text =
      'retry: 1000\r\n\r\nid: 1-0_0-0\n\n: ping\n\nid: 2-0_0-0\revent: execution.state\rdata: {"a":1}\r\r: tail\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const parser = new SseParser();
      const frames = [...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))];
      expect(frames).toEqual([
        { id: undefined, event: undefined, data: undefined, retry: 1000 },
        { id: '1-0_0-0', event: undefined, data: undefined, retry: undefined },
        { id: '2-0_0-0', event: 'execution.state', data: '{"a":1}', retry: undefined },
      ]);
    }
  });

  it('joins data lines and ignores comments and unknown fields', () => {
    const parser = new SseParser();
    expect(parser.push('data: a\ndata:b\n: note\nfoo: bar\n\n')).toEqual([
      { id: undefined, event: undefined, data: 'a\nb', retry: undefined },
    ]);
  });

  it('reads a chunk of many frames (a busy stream) as the same frames fed a character at a time', () => {
    const frames = Array.from(
      { length: 300 },
      (_, i) => `id: ${i}-0_0-0\nevent: execution.state\ndata: {"number":${i},"s":"é ✓"}\n\n`,
    );
    const text = `retry: 1000\n\n${frames.join(': ping\n\n')}`;
    const whole = new SseParser().push(text);
    const bytewise = new SseParser();
    const one = [...text].flatMap((c) => bytewise.push(c));
    expect(whole).toHaveLength(301);
    expect(one).toEqual(whole);
    expect(whole[300]).toEqual({
      id: '299-0_0-0',
      event: 'execution.state',
      data: '{"number":299,"s":"é ✓"}',
      retry: undefined,
    });
  });

  it('keeps the rules of the format: one leading space dropped, a field without a colon, ids with NUL ignored', () => {
    const parser = new SseParser();
    expect(
      parser.push('data:  two spaces\ndata\nid: a\0b\nretry: x\nevent:e\n\nfoo\n\n: only a comment\n\n'),
    ).toEqual([
      { id: undefined, event: 'e', data: ' two spaces\n', retry: undefined },
      { id: undefined, event: undefined, data: undefined, retry: undefined },
    ]);
    // What is left unfinished waits for the next chunk, \r\n split in two included.
    expect(parser.push('data: x\r')).toEqual([]);
    expect(parser.push('\n\r\n')).toEqual([{ id: undefined, event: undefined, data: 'x', retry: undefined }]);
  });
});
