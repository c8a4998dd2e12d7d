// Messages between the socket reader worker and the main thread.

export interface ReaderWorkerData {
  listenFd: number;
  /** SharedArrayBuffer of one Int32: the main thread's command after a disconnect. */
  control: SharedArrayBuffer;
}

export enum ReaderCommand {
  None = 0,
  AcceptNext = 1,
  Exit = 2,
}

export type ReaderEvent =
  | { type: 'connected'; fd: number }
  | { type: 'message'; bytes: ArrayBuffer; fds: number[]; fdsTruncated: boolean }
  | { type: 'malformed'; reason: string; fds: number[] }
  | { type: 'disconnected'; reason: string; fds: number[] }
  | { type: 'listener-closed'; reason: string };
