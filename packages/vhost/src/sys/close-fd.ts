// Closing an fd whose close cannot be acted on (Linux frees the number even when close fails).
import * as fs from 'fs';

export function closeFd(fd: number | null): void {
  if (fd === null) return;
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}
