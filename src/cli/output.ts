/** How commands write: JSON for scripts (`--json`), lines and tables for people. */

/** Where a command writes and what it knows of its terminal. */
export interface Io {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** The process's own streams. */
export const processIo: Io = { out: process.stdout, err: process.stderr, stdin: process.stdin };

/** Writes `value` as indented JSON. */
export function printJson(io: Io, value: unknown): void {
  io.out.write(`${JSON.stringify(value ?? null, null, 2)}\n`);
}

/** Writes rows under a header, in columns (the last one not padded). */
export function printTable(io: Io, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  for (const row of [header, ...rows]) {
    io.out.write(
      `${row
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
}

/** A byte count for people: 512 bytes, 1.5 KiB, ... */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) {
    return '? bytes';
  }
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
