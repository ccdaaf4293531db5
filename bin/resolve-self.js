// Module hooks for user modules (jobs/, lifecycle/):
// - the bare specifier "sprocd" resolves to this package's src/index.ts, so user modules share the
//   running server's copy of sprocd (and of zod) whether or not sprocd is installed in their folder;
// - a .ts file is ESM even in a folder whose package.json does not say "type": "module" (or has none):
//   procedure and hook modules `export default`, and CommonJS would forbid top-level await and import.meta.
let index;

export function initialize(data) {
  index = data.index;
}

export async function resolve(specifier, context, next) {
  const result = await next(specifier === 'sprocd' ? index : specifier, context);
  if (
    // Node 22.7+ names a .ts file outside a "type": "module" package 'commonjs-typescript'.
    (result.format === 'commonjs' || result.format === 'commonjs-typescript') &&
    /\.ts(\?|$)/.test(result.url) &&
    !result.url.includes('/node_modules/')
  ) {
    return { ...result, format: 'module' };
  }
  return result;
}

// Node 22.7+ resolves such a file as 'commonjs-typescript' and may hand it to its CommonJS loader
// before the resolve hook's format is seen, which then misses "sprocd" and ESM syntax: say it again
// when the file is loaded.
export async function load(url, context, next) {
  if (
    /\.ts(\?|$)/.test(url) &&
    !url.includes('/node_modules/') &&
    (context.format === undefined ||
      context.format === 'commonjs' ||
      context.format === 'commonjs-typescript')
  ) {
    return next(url, { ...context, format: 'module' });
  }
  return next(url, context);
}
