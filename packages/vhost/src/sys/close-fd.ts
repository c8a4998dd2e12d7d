// Closing an fd whose close cannot be acted on (Linux frees the number even when close fails).
// close(2) itself rather than fs.closeSync, which in a worker thread warns about fds it did not open.
import { closeRaw } from './libc';

export function closeFd(fd: number | null): void {
  if (fd === null || fd < 0) return;
  closeRaw(fd);
}
