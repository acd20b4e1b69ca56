/** Column-aligned text tables for the CLI's listings, and the one way they show a timestamp. */

/** Rows of cells (the first row is the header) padded into columns two spaces apart. */
export function textTable(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

/** `2026-12-03T13:05:12.345Z` → `2026-12-03 13:05:12` (UTC, as the column headers say); none → `-`. */
export function shortTime(iso: string | null | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '-';
}
