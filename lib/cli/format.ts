/** Plain-text tables and units for terminal output. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]): string =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...cells.slice(1).map(line)].join('\n');
}

export function bytes(count: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function seconds(value: number | null): string {
  if (value === null) return '-';
  if (value < 60) return `${value.toFixed(value < 10 ? 2 : 1)}s`;
  if (value < 3600) return `${Math.floor(value / 60)}m${Math.round(value % 60)}s`;
  if (value < 86_400) return `${Math.floor(value / 3600)}h${Math.round((value % 3600) / 60)}m`;
  return `${Math.floor(value / 86_400)}d${Math.round((value % 86_400) / 3600)}h`;
}

export function when(value: Date | string | null | undefined): string {
  if (!value) return '-';
  return (typeof value === 'string' ? value : value.toISOString()).replace(/\.\d{3}Z$/, 'Z');
}
