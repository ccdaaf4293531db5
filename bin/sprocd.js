#!/usr/bin/env node
// Runs sprocd from its TypeScript source through tsx, so neither sprocd nor the user's jobs/ need a
// build step. `import ... from 'sprocd'` inside jobs/ resolves to this very copy (one module graph).
import { register } from 'tsx/esm/api';
import { register as registerHooks } from 'node:module';

register();
registerHooks(new URL('./resolve-self.js', import.meta.url), {
  data: { index: new URL('../src/index.ts', import.meta.url).href },
});
const { main } = await import('../src/cli.ts');
await main();
