// A request actor: an xstate actor of requestLogic while someone inspects (so inspection sees every
// request), else the same reducer over a plain record. Measured in the daemon: an xstate actor per
// request cost about 8 µs of CPU and most of the garbage; the record costs well under 1 µs.
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import { RequestEvent, RequestInput, RequestState, initialRequestState, reduceRequest, requestLogic } from './request.logic';

export class RequestRun {
  private state: RequestState | null;
  private readonly actor: Actor<typeof requestLogic> | null;

  constructor(input: RequestInput, inspect: ((e: InspectionEvent) => void) | undefined) {
    if (inspect) {
      this.actor = createActor(requestLogic, { input, inspect });
      this.actor.start();
      this.state = null;
    } else {
      this.actor = null;
      this.state = initialRequestState(input);
    }
  }

  send(event: RequestEvent): void {
    if (this.actor) this.actor.send(event);
    else this.state = reduceRequest(this.state!, event);
  }

  get snapshot(): RequestState {
    return this.actor ? this.actor.getSnapshot().context : this.state!;
  }

  /** The xstate actor behind this request, when it has one. */
  get actorRef(): Actor<typeof requestLogic> | null {
    return this.actor;
  }

  stop(): void {
    this.actor?.stop();
  }
}
