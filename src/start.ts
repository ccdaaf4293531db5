/** Starting a node as a program: settings, logger, signals (SIGTERM/SIGINT stop, SIGHUP reloads). */
import type { Logger } from 'pino';
import { loadSettings, type Settings } from './config.js';
import { createLogger } from './logger.js';
import { SprocdNode } from './node.js';

/** Creates a node (not started) from settings, or from the environment. */
export function createNode(settings: Settings = loadSettings(), log?: Logger): SprocdNode {
  return new SprocdNode(settings, log ?? createLogger(settings.logLevel));
}

/**
 * Runs a node until SIGTERM or SIGINT, then stops it in order and exits 0. A failed start exits 1
 * with the reason logged.
 */
export async function runNode(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let settings: Settings;
  try {
    settings = loadSettings(env);
  } catch (err) {
    process.stderr.write(`sprocd: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(settings.logLevel);
  const node = createNode(settings, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'stop requested');
    node.stop().then(
      () => flushAndExit(log, 0),
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        flushAndExit(log, 1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    node
      .reload()
      .catch((err: unknown) => log.error({ err }, 'reload failed; the previous procedures stay in use'));
  });
  try {
    await node.start();
  } catch (err) {
    if (stopping) {
      return;
    }
    log.fatal({ err }, `start failed: ${(err as Error).message}`);
    flushAndExit(log, 1);
  }
}

function flushAndExit(log: Logger, code: number): void {
  log.flush();
  // pino-pretty runs in a worker thread; give it a moment to write the last lines.
  setTimeout(() => process.exit(code), 100).unref();
  setTimeout(() => process.exit(code), 300);
}
