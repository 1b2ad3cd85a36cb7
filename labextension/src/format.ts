/** Short human forms of the daemon's numbers. */

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) {
    return '–';
  }
  if (ms < 10) {
    return `${ms.toFixed(2)} ms`;
  }
  if (ms < 1000) {
    return `${ms.toFixed(0)} ms`;
  }
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) {
    return '–';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatAge(
  createdAt: number,
  now: number = Date.now() / 1000
): string {
  const seconds = Math.max(0, now - createdAt);
  if (seconds < 60) {
    return `${seconds.toFixed(0)} s ago`;
  }
  if (seconds < 3600) {
    return `${(seconds / 60).toFixed(0)} min ago`;
  }
  return `${(seconds / 3600).toFixed(1)} h ago`;
}
