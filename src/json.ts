/**
 * What counts as JSON, in one place: the params, results and progress of executions and the entries
 * of the session's storage follow the same rule. A value is refused with the path of its first
 * non-JSON part and the reason; callers differ only by options: the error they throw, whether they
 * want a copy, and a size limit.
 *
 * JSON here means: null, booleans, strings, finite numbers, arrays without holes or undefined
 * elements, and plain objects (prototype Object.prototype or null) with string keys and data
 * properties. `undefined` object properties are accepted (JSON.stringify drops them). A value met twice
 * on one branch is a cycle; the same object in two places is not.
 */

/** Deepest nesting accepted; deeper is refused rather than risking a stack overflow. */
export const MAX_JSON_DEPTH = 256;

/** Longest path a refusal shows; a deeper one is cut, with "…". */
const MAX_SHOWN_PATH = 80;

/** The options of a check. */
export interface JsonCheckOptions {
  /** How messages name the value itself ("params", "cfg", '["my key"]'); paths inside grow from it. */
  path: string;
  /** The error for the first non-JSON part: where it is and why ("is a Map, not a plain object"). */
  refuse: (path: string, reason: string) => Error;
}

/** The options of a checked copy. */
export interface JsonCopyOptions extends JsonCheckOptions {
  /** Maps an object met on the way to the object to read instead (drafts pass their proxies' targets). */
  unwrap?: (obj: object) => object;
}

/** The options of a checked serialization. */
export interface JsonTextOptions extends JsonCheckOptions {
  /** Largest JSON text, in UTF-8 bytes. */
  maxBytes: number;
  /** The error for a text of `bytes` over `maxBytes`. */
  tooLarge: (bytes: number, maxBytes: number) => Error;
  /** Skips the check for a value that is JSON by construction (a draft's tree). */
  trusted?: boolean;
}

/** Throws `options.refuse(...)` unless `value` is JSON (see the top of this file). */
export function checkJson(value: unknown, options: JsonCheckOptions): void {
  if (value === null || typeof value !== 'object') {
    checkPrimitive(value, options.path, options.refuse);
    return;
  }
  walk(value, options.path, options.refuse, [], 0, undefined);
}

/**
 * Checks `value` as {@link checkJson} does and returns a deep copy made of fresh plain objects and
 * arrays, without the `undefined` properties.
 */
export function copyJson(value: unknown, options: JsonCopyOptions): unknown {
  return walk(value, options.path, options.refuse, [], 0, options.unwrap ?? ((obj) => obj));
}

/** Checks `value` and returns its JSON text; throws `options.tooLarge(...)` above `options.maxBytes`. */
export function toJsonText(value: unknown, options: JsonTextOptions): string {
  if (!options.trusted) {
    checkJson(value, options);
  }
  const json = JSON.stringify(value);
  // Cheap upper bound first: a UTF-16 code unit is at most 3 UTF-8 bytes.
  if (json.length * 3 > options.maxBytes) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > options.maxBytes) {
      throw options.tooLarge(bytes, options.maxBytes);
    }
  }
  return json;
}

/** A property step of a path: `.name` for identifiers, `["odd name"]` otherwise, `[3]` for indexes. */
export function pathStep(parent: string, prop: string | number): string {
  if (typeof prop === 'number') {
    return `${parent}[${prop}]`;
  }
  return IDENTIFIER.test(prop) ? `${parent}.${prop}` : `${parent}[${JSON.stringify(prop)}]`;
}

/** How the path of a named value starts: the name, or `["odd name"]`. */
export function rootPath(name: string): string {
  return IDENTIFIER.test(name) ? name : `[${JSON.stringify(name)}]`;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

type Refuse = JsonCheckOptions['refuse'];

function shown(path: string): string {
  return path.length > MAX_SHOWN_PATH ? `${path.slice(0, MAX_SHOWN_PATH)}…` : path;
}

function checkPrimitive(value: unknown, path: string, refuse: Refuse): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        throw refuse(shown(path), `is ${value} (JSON has only finite numbers)`);
      }
      return;
    case 'undefined':
      throw refuse(shown(path), 'is undefined');
    case 'bigint':
      throw refuse(shown(path), 'is a BigInt (JSON has none; use a string)');
    case 'symbol':
      throw refuse(shown(path), 'is a symbol');
    case 'function':
      throw refuse(shown(path), 'is a function');
    default:
      return; // null
  }
}

function walk(
  value: unknown,
  path: string,
  refuse: Refuse,
  ancestors: object[],
  depth: number,
  copy: ((obj: object) => object) | undefined,
): unknown {
  if (value === null || typeof value !== 'object') {
    checkPrimitive(value, path, refuse);
    return value;
  }
  const obj = copy === undefined ? value : copy(value);
  if (ancestors.includes(obj)) {
    throw refuse(shown(path), 'is a cycle (it contains itself)');
  }
  if (depth >= MAX_JSON_DEPTH) {
    throw refuse(shown(path), `is nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (Object.getOwnPropertySymbols(obj).length > 0) {
    throw refuse(shown(path), 'has a symbol-keyed property');
  }
  ancestors.push(obj);
  try {
    if (Array.isArray(obj)) {
      if (Object.getPrototypeOf(obj) !== Array.prototype) {
        throw refuse(shown(path), 'is an instance of an Array subclass, not a plain array');
      }
      const out: unknown[] | undefined = copy === undefined ? undefined : new Array<unknown>(obj.length);
      for (let i = 0; i < obj.length; i++) {
        const elementPath = pathStep(path, i);
        const desc = Object.getOwnPropertyDescriptor(obj, i);
        if (desc === undefined) {
          throw refuse(shown(elementPath), 'is a hole in an array (arrays cannot hold undefined)');
        }
        if (desc.get !== undefined || desc.set !== undefined) {
          throw refuse(shown(elementPath), 'is a getter or setter, not a data property');
        }
        if (desc.value === undefined) {
          throw refuse(shown(elementPath), 'is undefined in an array (use null)');
        }
        const element = walk(desc.value, elementPath, refuse, ancestors, depth + 1, copy);
        if (out !== undefined) {
          out[i] = element;
        }
      }
      return out ?? obj;
    }
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      const name = (obj as { constructor?: { name?: unknown } }).constructor?.name;
      throw refuse(
        shown(path),
        `is ${typeof name === 'string' && name !== '' ? `a ${name}` : 'a class instance'}, not a plain object`,
      );
    }
    const out: Record<string, unknown> | undefined = copy === undefined ? undefined : {};
    for (const prop of Object.keys(obj)) {
      const desc = Object.getOwnPropertyDescriptor(obj, prop);
      if (desc === undefined) {
        continue;
      }
      const propPath = pathStep(path, prop);
      if (desc.get !== undefined || desc.set !== undefined) {
        throw refuse(shown(propPath), 'is a getter or setter, not a data property');
      }
      if (desc.value === undefined) {
        continue; // dropped, as JSON.stringify drops it
      }
      const propValue = walk(desc.value, propPath, refuse, ancestors, depth + 1, copy);
      if (out !== undefined) {
        // defineProperty, not assignment: a "__proto__" key must stay an ordinary property.
        Object.defineProperty(out, prop, {
          value: propValue,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      }
    }
    return out ?? obj;
  } finally {
    ancestors.pop();
  }
}
