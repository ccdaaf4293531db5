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
    result.format === 'commonjs' &&
    /\.ts(\?|$)/.test(result.url) &&
    !result.url.includes('/node_modules/')
  ) {
    return { ...result, format: 'module' };
  }
  return result;
}
