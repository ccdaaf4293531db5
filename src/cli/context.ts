/** What every command gets: its client (from --url/--token or the environment), --json, its streams. */
import type { SprocdClient } from '../client/index.js';
import type { Io } from './output.js';

/** The context of a command's action. */
export interface CliContext {
  /** A client of the node named by --url / SPROCD_URL, with --token / SPROCD_TOKEN. */
  client(): SprocdClient;
  /** Whether --json was given: print JSON for scripts. */
  json(): boolean;
  readonly io: Io;
}
