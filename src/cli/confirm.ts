/** Asking a person before something that cannot be undone; refusing when nobody can answer. */
import readline from 'node:readline/promises';
import { CliError, EXIT } from './exit.js';
import type { Io } from './output.js';

/**
 * Asks `question` on the terminal and resolves when the answer is yes. Throws CliError (exit 4)
 * when the answer is not yes, or when stdin is not a terminal (a script must say --yes).
 */
export async function confirm(io: Io, question: string, yesFlag: string): Promise<void> {
  if (!io.stdin.isTTY) {
    throw new CliError(
      'NOT_CONFIRMED',
      `nobody to confirm on this terminal (stdin is not a TTY): add ${yesFlag} to go ahead`,
      EXIT.refused,
    );
  }
  const rl = readline.createInterface({ input: io.stdin, output: io.err });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') {
      throw new CliError('NOT_CONFIRMED', 'not confirmed: nothing was changed', EXIT.refused);
    }
  } finally {
    rl.close();
  }
}
