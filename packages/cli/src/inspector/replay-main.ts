#!/usr/bin/env node
// Opens a trace recorded with `vfsd --record FILE` in the inspector's page, without a daemon:
//   node packages/cli/dist/src/inspector/replay-main.js FILE [--port N]
import * as fs from 'node:fs';
import { serveTrace } from './server';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  const at = args.indexOf('--port');
  const port = at >= 0 ? Number(args[at + 1]) : 0;
  if (!file || !fs.existsSync(file) || !Number.isInteger(port)) {
    process.stderr.write('usage: replay-main.js TRACE.jsonl [--port N]\n');
    process.exitCode = 2;
    return;
  }
  const s = await serveTrace(file, port);
  process.stdout.write(`trace viewer: ${s.url}\n`);
}

void main();
