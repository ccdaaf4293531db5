/**
 * The node's pino logger: JSON lines by default, readable lines when LOG_LEVEL=debug/trace or when
 * stdout is a terminal (no extra set-up), with tokens and passwords redacted.
 */
import { pino, type Logger } from 'pino';

/** Creates the root logger for a node. */
export function createLogger(level: string, options: { pretty?: boolean; name?: string } = {}): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true || level === 'debug' || level === 'trace');
  return pino({
    level,
    name: options.name ?? 'sprocd',
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
  });
}

/** A Redis URL with its password hidden, for logs. */
export function redactUrl(url: string): string {
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
