/**
 * Which events may change what a page shows, so that the console does not ask a busy node again for a
 * page that would come back the same (pages/executions.js).
 */

/**
 * Whether an event may change the page shown, so that a busy node is not asked for a page that would
 * come back the same: not for another procedure's executions; with a state filter, only for executions
 * entering that state or leaving the page; a removal, only of one shown (on the first page: cursor pages
 * reload for any, as what follows a cursor may shift). Without data yet, or for anything else: yes.
 */
export function changesPage(message, filter, firstPage, items) {
  const e = message.data;
  if (message.type === 'reset' || typeof e?.number !== 'number' || !items) {
    return true;
  }
  if (filter.procedure && e.procedure && e.procedure !== filter.procedure) {
    return false;
  }
  const shown = items.some((x) => x.number === e.number);
  if (message.type === 'execution.removed') {
    return shown || !firstPage;
  }
  return shown || !filter.state || e.state === filter.state;
}
