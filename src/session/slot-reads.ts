/**
 * Reads of the entries in data slots (SPROCD_STORAGE_SLOTS > 1): one command per slot, the slots in
 * parallel. Under a `use`'s locks what is read is current (a commit applies before it releases);
 * outside a `use` a read may see a multi-slot commit applied in one slot and not yet in another.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { StorageLayout } from './layout.js';

/** An entry as read from its slot: its JSON (absent: no such entry) and version (0: none). */
export interface SlotValue {
  readonly json: string | undefined;
  readonly version: number;
}

/** The JSON and version of each of `names`, with one MULTI (HMGET of both hashes) per slot. */
export async function readSlotValues(
  redis: RedisConnection,
  layout: StorageLayout,
  names: readonly string[],
): Promise<Map<string, SlotValue>> {
  const out = new Map<string, SlotValue>();
  const bySlot = layout.slots.group(names, (name) => name);
  await Promise.all(
    [...bySlot].map(async ([slot, list]) => {
      const res = await redis
        .multi()
        .hmget(slot.data, ...list)
        .hmget(slot.versions, ...list)
        .exec();
      for (const [err] of res ?? []) {
        if (err) {
          throw err;
        }
      }
      const values = (res?.[0]?.[1] ?? []) as (string | null)[];
      const versions = (res?.[1]?.[1] ?? []) as (string | null)[];
      list.forEach((name, i) =>
        out.set(name, { json: values[i] ?? undefined, version: Number(versions[i] ?? 0) }),
      );
    }),
  );
  return out;
}

/** Every entry: name → JSON, from every slot. */
export async function readAllSlots(
  redis: RedisConnection,
  layout: StorageLayout,
): Promise<Record<string, string>> {
  const parts = await Promise.all(layout.slots.all().map((slot) => redis.hgetall(slot.data)));
  return Object.assign({}, ...parts) as Record<string, string>;
}

/** Every entry's name, from every slot, sorted. */
export async function slotNames(redis: RedisConnection, layout: StorageLayout): Promise<string[]> {
  const parts = await Promise.all(layout.slots.all().map((slot) => redis.hkeys(slot.data)));
  return parts.flat().sort();
}
