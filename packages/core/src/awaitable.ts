// Answers that are values when computed inline and promises when they leave the thread. A request
// answered inline must not pay for a promise chain (each await is a microtask hop and garbage), so
// the path from the server to the filesystem's syscall composes these instead of async functions.
// No imports: the passthrough's workers may load this file without the rest of @vfsd/core.

/** The value itself when answered inline, else a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** `f` of the value, now or once it resolves (a throw from `f` stays synchronous for a value). */
export function then<T, U>(v: Awaitable<T>, f: (value: T) => Awaitable<U>): Awaitable<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** `run()`, then `cleanup()` once its answer is settled, whether it failed or not (try/finally). */
export function always<T>(run: () => Awaitable<T>, cleanup: () => void): Awaitable<T> {
  let v: Awaitable<T>;
  try {
    v = run();
  } catch (e) {
    cleanup();
    throw e;
  }
  if (v instanceof Promise) return v.finally(cleanup);
  cleanup();
  return v;
}

/** `run()`, or `onError(e)` if it throws or rejects (try/catch). */
export function recover<T>(run: () => Awaitable<T>, onError: (e: unknown) => Awaitable<T>): Awaitable<T> {
  let v: Awaitable<T>;
  try {
    v = run();
  } catch (e) {
    return onError(e);
  }
  return v instanceof Promise ? v.catch(onError) : v;
}
