/**
 * Reads of the entries in data slots (SPROCD_STORAGE_SLOTS > 1): one command per slot, the slots in
 * parallel. Under a `use`'s locks what is read is current (a commit applies before it releases);
 * outside a `use` a read may see a multi-slot commit applied in one slot and not yet in another.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { StorageLayout } from './layout.js';

/** The JSON of each of `names` (absent: no such entry), with one HMGET per slot. */
export async function readSlotValues(
  redis: RedisConnection,
  layout: StorageLayout,
  names: readonly string[],
): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  const bySlot = layout.slots.group(names, (name) => name);
  await Promise.all(
    [...bySlot].map(async ([slot, list]) => {
      const values = await redis.hmget(slot.data, ...list);
      list.forEach((name, i) => out.set(name, values[i] ?? undefined));
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
