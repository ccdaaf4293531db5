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
});
