/**
 * The node's pino logger: JSON lines by default, readable lines when LOG_LEVEL=debug/trace or when
 * stdout is a terminal (no extra set-up), with tokens and passwords redacted. While tracing is on, a
 * line written inside a span carries its `trace_id`, `span_id` and `trace_flags` (the names
 * OpenTelemetry gives them in logs), so a line leads to its trace and back.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { traceLogFields } from './tracing/spans.js';
import { isSentinelUrl, redactSentinelUrl } from './redis/sentinel-url.js';
import { isClusterUrl, redactClusterUrl } from './redis/cluster-url.js';
import { isUnixUrl, redactUnixUrl } from './redis/unix-url.js';

/** How {@link createLogger} writes. */
export interface LoggerOptions {
  /** Readable lines instead of JSON. @defaultValue on a terminal, or at debug/trace */
  pretty?: boolean;
  name?: string;
  /** Where JSON lines go (tests read them). @defaultValue stdout */
  destination?: DestinationStream;
}

/** Creates the root logger for a node. */
export function createLogger(level: string, options: LoggerOptions = {}): Logger {
  const pretty =
    options.destination === undefined &&
    (options.pretty ?? (process.stdout.isTTY === true || level === 'debug' || level === 'trace'));
  const settings: pino.LoggerOptions = {
    level,
    name: options.name ?? 'sprocd',
    mixin: traceLogFields,
    redact: {
      paths: [
        'token',
        '*.token',
        'password',
        '*.password',
        'req.headers.authorization',
        'redisUrl',
        '*.redisUrl',
      ],
      censor: '[redacted]',
    },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: {
              colorize: process.stdout.isTTY === true,
              translateTime: 'SYS:HH:MM:ss.l',
              ignore: 'pid,hostname',
            },
          },
        }
      : {}),
  };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}

/** A Redis URL with its password hidden, for logs. */
export function redactUrl(url: string): string {
  if (isSentinelUrl(url)) {
    return redactSentinelUrl(url);
  }
  if (isClusterUrl(url)) {
    return redactClusterUrl(url);
  }
  if (isUnixUrl(url)) {
    return redactUnixUrl(url);
  }
  try {
    const u = new URL(url);
    if (u.password) {
      u.password = '***';
    }
    return u.toString();
  } catch {
    return '[unparsable url]';
  }
}
