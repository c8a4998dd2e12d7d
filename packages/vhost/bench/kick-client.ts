// Child process of kick-latency.ts: plays the guest. fd 4 is the kick eventfd, fd 5 a blocking
// eventfd the back-end signals once it has seen the kick. Each round: stamp, kick, block in read(2)
// until acknowledged. The stamps (CLOCK_MONOTONIC, shared by all processes) go back over IPC.
import * as fs from 'fs';
import { monoNs } from './bench-util';

const KICK_FD = 4;
const ACK_FD = 5;

function main(): void {
  const rounds = Number(process.argv[2]);
  const warmup = Number(process.argv[3]);
  const gapUs = Number(process.argv[4] ?? 0);
  const one = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
  const buf = Buffer.alloc(8);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const kickAt = new Float64Array(rounds);
  const roundTrip = new Float64Array(rounds);
  for (let i = 0; i < warmup + rounds; i++) {
    if (gapUs > 0) Atomics.wait(sleeper, 0, 0, gapUs / 1000);
    const t0 = monoNs();
    fs.writeSync(KICK_FD, one, 0, 8, null);
    fs.readSync(ACK_FD, buf, 0, 8, null);
    const t2 = monoNs();
    if (i >= warmup) {
      kickAt[i - warmup] = t0;
      roundTrip[i - warmup] = t2 - t0;
    }
  }
  process.send!({ kickAt: Array.from(kickAt), roundTrip: Array.from(roundTrip) }, () => process.disconnect());
}

main();
