// Module hook: maps the bare specifier "sprocd" to this package's src/index.ts, so user modules share
// the running server's copy of sprocd (and of zod) whether or not sprocd is installed in their folder.
let index;

export function initialize(data) {
  index = data.index;
}

export async function resolve(specifier, context, next) {
  if (specifier === 'sprocd') {
    return next(index, context);
  }
  return next(specifier, context);
}
