// The inspection hook: the visualizer and the trace recorder subscribe here. Long-lived actors
// (device, queues) always report through `inspect`, which does nothing with no observer; a request
// actor gets an inspector only when someone listens, so an unobserved daemon pays nothing per request.
import type { InspectionEvent } from 'xstate';

export type InspectionObserver = (event: InspectionEvent) => void;

export class Inspection {
  private readonly observers = new Set<InspectionObserver>();
  /** Observers of what long-lived actors report anyway: they do not make `active` true. */
  private readonly passive = new Set<InspectionObserver>();

  subscribe(observer: InspectionObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /**
   * Receives only what is reported without anyone asking: the device and queue actors' events, and
   * request actors' while another observer made them xstate actors. Costs nothing per request.
   */
  watch(observer: InspectionObserver): () => void {
    this.passive.add(observer);
    return () => this.passive.delete(observer);
  }

  get active(): boolean {
    return this.observers.size > 0;
  }

  readonly inspect = (event: InspectionEvent): void => {
    for (const o of this.observers) o(event);
    for (const o of this.passive) o(event);
  };

  /** For per-request actors: undefined (no cost) when nobody listens. */
  get requestInspect(): ((event: InspectionEvent) => void) | undefined {
    return this.observers.size > 0 ? this.inspect : undefined;
  }
}
