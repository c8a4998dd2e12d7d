// Closing an fd whose close cannot be acted on (Linux never keeps it open after close fails). close(2)
// itself: in a request-queue thread, Node's fs.closeSync warns about fds that thread did not open.
import { closeRaw } from './libc';

export function closeQuietly(fd: number): void {
  closeRaw(fd);
}
