/** Types of ./visible.js (a browser module, also tested under Node). */
export interface PageEvent {
  type: string;
  data?: { number?: unknown; procedure?: unknown; state?: unknown } | null;
}
export interface PageItem {
  number: number;
}
export function changesPage(
  message: PageEvent,
  filter: { state?: string; procedure?: string },
  firstPage: boolean,
  items: readonly PageItem[] | undefined,
): boolean;
