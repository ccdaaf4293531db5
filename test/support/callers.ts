/** A callers file (SPROCD_CALLERS_FILE) for tests: each caller's token hashed as the file holds it. */
import fs from 'node:fs';
import path from 'node:path';
import { tokenSha256 } from '../../src/auth/tokens.js';

/** One caller of a test's callers file. */
export interface TestCaller {
  name: string;
  token: string;
  scopes: string[];
}

/** Writes `callers.json` in `dir` and returns its path. */
export function writeCallersFile(dir: string, callers: readonly TestCaller[]): string {
  const file = path.join(dir, 'callers.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      callers: callers.map((c) => ({ name: c.name, tokenSha256: tokenSha256(c.token), scopes: c.scopes })),
    }),
  );
  return file;
}
