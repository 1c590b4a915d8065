// Byte sizes: a whole number of bytes, or "512KiB", "1MiB", "64kB", "1MB".

const UNIT_BYTES = { B: 1, kB: 1_000, KiB: 1_024, MB: 1_000_000, MiB: 1_048_576 } as const;
type Unit = keyof typeof UNIT_BYTES;

export const SIZE_PATTERN = '^\\d+(B|kB|KiB|MB|MiB)?$';
const SIZE = /^(\d+)(B|kB|KiB|MB|MiB)?$/;

export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text);
  if (match === null) return undefined;
  return Number(match[1]) * UNIT_BYTES[(match[2] ?? 'B') as Unit];
}
