// --socket-group: the socket is made group-owned and mode 0660, so that a QEMU of that group (and
// not everyone) may connect.
import * as fs from 'fs';

export function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const line = fs
    .readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  if (!line) throw new Error(`no group named ${name}`);
  return Number(line.split(':')[2]);
}

export function applySocketGroup(socketPath: string, group: string): void {
  fs.chownSync(socketPath, -1, groupId(group));
  fs.chmodSync(socketPath, 0o660);
}
