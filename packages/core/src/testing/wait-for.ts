// Waiting in a test for something to become true (a request to be waiting, an actor to stop) instead
// of sleeping a fixed time: as fast as the thing itself, and a clear failure when it never happens.

/** Resolves once `cond()` holds; rejects after `timeoutMs` naming `what`. Checks every 2 ms. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
