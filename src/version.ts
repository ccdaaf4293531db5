/** sprocd's version, read once from its package.json (the same relative path from src/ and dist/). */
import { createRequire } from 'node:module';

/** The version of this sprocd package, e.g. "0.1.0". */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string })
  .version;
