/** Waiting in tests for something that happens elsewhere (another process, a timer, Redis). */

/**
 * Calls `fn` every `intervalMs` until `ok` accepts its value, and returns that value; throws with the
 * last value when `timeoutMs` passes first.
 */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 15_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (ok(value)) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
