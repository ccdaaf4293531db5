/**
 * The console's event-stream client (src/console/lib/sse.js), under Node: the parser against the
 * event-stream rules, and the reader's reconnect with Last-Event-ID against a plain HTTP server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSseParser, followEvents, type SseMessage, type SseStatus } from '../../src/console/lib/sse.js';

function parse(chunks: string[]): SseMessage[] {
  const out: SseMessage[] = [];
  const parser = createSseParser((m) => out.push(m));
  chunks.forEach((c) => parser.push(c));
  return out;
}

describe('createSseParser', () => {
  it('reads id, event and data, and names unnamed events "message"', () => {
    expect(parse(['id: 1-0\nevent: execution.state\ndata: {"number":1}\n\n', 'data: plain\n\n'])).toEqual([
      { id: '1-0', event: 'execution.state', data: '{"number":1}' },
      { id: '1-0', event: 'message', data: 'plain' },
    ]);
  });

  it('joins data lines, skips comments, and accepts CRLF and CR line ends', () => {
    expect(parse([': ping\r\ndata: a\r\ndata: b\r\n\r\n', 'data:c\r\rdata: d\n\n'])).toEqual([
      { id: '', event: 'message', data: 'a\nb' },
      { id: '', event: 'message', data: 'c' },
      { id: '', event: 'message', data: 'd' },
    ]);
  });

  it('puts events back together across chunk boundaries, a CRLF split in two included', () => {
    const text = 'id: 7\nevent: system\ndata: {"type":"node.joined"}\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      expect(parse([text.slice(0, cut), text.slice(cut)]), `cut at ${cut}`).toEqual([
        { id: '7', event: 'system', data: '{"type":"node.joined"}' },
      ]);
    }
  });

  it('dispatches nothing for an event without data, but remembers its id', () => {
    const out: SseMessage[] = [];
    const parser = createSseParser((m) => out.push(m));
    parser.push('id: 9-1\nevent: nothing\n\n');
    expect(out).toEqual([]);
    expect(parser.lastEventId()).toBe('9-1');
  });
});

describe('followEvents', () => {
  let server: http.Server | undefined;
  let controller: AbortController;

  beforeEach(() => {
    controller = new AbortController();
  });

  afterEach(async () => {
    controller.abort();
    await new Promise((resolve) => server?.close(resolve));
  });

  async function serve(handler: http.RequestListener): Promise<string> {
    server = http.createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/v1/events`;
  }

  it('sends the bearer header, and resumes after the last id when the stream ends', async () => {
    const seen: { auth?: string; lastId?: string }[] = [];
    const url = await serve((req, res) => {
      seen.push({
        auth: req.headers.authorization,
        lastId: req.headers['last-event-id'] as string | undefined,
      });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (seen.length === 1) {
        res.end(
          'id: 1-0\nevent: execution.state\ndata: {"n":1}\n\nid: 2-0\nevent: execution.state\ndata: {"n":2}\n\n',
        );
      } else {
        res.write('id: 3-0\nevent: execution.state\ndata: {"n":3}\n\n');
      }
    });
    const events: SseMessage[] = [];
    const statuses: SseStatus[] = [];
    followEvents({
      url: () => url,
      headers: () => ({ authorization: 'Bearer t0k3n' }),
      onEvent: (m) => events.push(m),
      onStatus: (s) => statuses.push(s),
      signal: controller.signal,
    });
    await vi.waitFor(() => expect(events.map((e) => e.id)).toEqual(['1-0', '2-0', '3-0']), { timeout: 5000 });
    expect(seen).toEqual([
      { auth: 'Bearer t0k3n', lastId: undefined },
      { auth: 'Bearer t0k3n', lastId: '2-0' },
    ]);
    expect(statuses).toContain('live');
  });

  it('starts after the id it is given (a stream followed before, with other filters)', async () => {
    const ids: (string | undefined)[] = [];
    const url = await serve((req, res) => {
      ids.push(req.headers['last-event-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': ping\n\n');
    });
    followEvents({
      url: () => url,
      headers: () => ({}),
      lastEventId: '41-0',
      onEvent: () => undefined,
      onStatus: () => undefined,
      signal: controller.signal,
    });
    await vi.waitFor(() => expect(ids).toEqual(['41-0']));
  });

  it('reports a node without the route as unavailable, and a refused token as unauthorized', async () => {
    let status = 404;
    const url = await serve((_req, res) => {
      res.writeHead(status).end();
    });
    const statuses: SseStatus[] = [];
    const follow = (signal: AbortSignal) =>
      followEvents({
        url: () => url,
        headers: () => ({}),
        onEvent: () => undefined,
        onStatus: (s) => statuses.push(s),
        signal,
      });
    follow(controller.signal);
    await vi.waitFor(() => expect(statuses).toContain('unavailable'));
    status = 401;
    const second = new AbortController();
    follow(second.signal);
    await vi.waitFor(() => expect(statuses).toContain('unauthorized'));
    second.abort();
  });
});
