// Closing an fd whose close cannot be acted on.
import * as fs from 'node:fs';

export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Nothing useful to do: the fd is gone either way (Linux never keeps it open after close fails).
  }
}
