/**
 * `receipt show|list|verify` in client mode (issue #11), against the real daemon: the receipts
 * the daemon wrote (for runs made through the CLI's client mode) are shown, listed, filtered and
 * verified through `--socket`, and print what the in-process commands print when they read the
 * daemon's own store (read-only, beside the running daemon).
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli-process.js';
import { REPO_ROOT, startTestDaemon, type TestDaemon, tempDirectory } from './helpers/daemon.js';

const ECHO = join(REPO_ROOT, 'wasm', 'echo.wasm');

let daemon: TestDaemon;
let tmp: { dir: string; remove: () => void };
let completedId: string;
let failedId: string;

const remote = (...args: string[]) => runCli([...args, '--socket', daemon.socket]);
/** The same command in-process, reading the daemon's store (read-only, as `receipt` always does). */
const local = (...args: string[]) => runCli([...args, '--store', daemon.store]);

beforeAll(async () => {
  tmp = tempDirectory('tp-cli-client-receipts-');
  const input = join(tmp.dir, 'input.txt');
  writeFileSync(input, 'receipts');
  daemon = await startTestDaemon();
  // One after the other: the list's order is the order they ran.
  const ok = await remote('run', ECHO, '--export', 'echo', '--input', input, '--json');
  expect(ok.code, ok.stderr).toBe(0);
  completedId = JSON.parse(ok.stdout).receipt.id;
  const failed = await remote('run', ECHO, '--export', 'fail', '--input', input, '--json');
  expect(failed.code, failed.stderr).toBe(1);
  failedId = JSON.parse(failed.stdout).receipt.id;
}, 120_000);

afterAll(async () => {
  try {
    await daemon?.stop();
  } finally {
    tmp?.remove();
  }
}, 30_000);

describe('receipt commands through the daemon', () => {
  it('show prints the receipt the daemon sealed, as in-process prints it from the same store', async () => {
    const [viaDaemon, inProcess] = await Promise.all([
      remote('receipt', 'show', completedId),
      local('receipt', 'show', completedId),
    ]);
    expect(viaDaemon.code, viaDaemon.stderr).toBe(0);
    expect(viaDaemon.stdout).toBe(inProcess.stdout);
    const receipt = JSON.parse(viaDaemon.stdout);
    expect(receipt).toMatchObject({
      id: completedId,
      status: 'completed',
      actor: expect.stringMatching(/^uid:/),
    });
  });

  it('list prints the ids oldest first, and filters and --json as in-process', async () => {
    const [all, allLocal, failed, failedLocal, newestJson, newestJsonLocal] = await Promise.all([
      remote('receipt', 'list'),
      local('receipt', 'list'),
      remote('receipt', 'list', '--status', 'failed'),
      local('receipt', 'list', '--status', 'failed'),
      remote('receipt', 'list', '--order', 'newest', '--limit', '1', '--json'),
      local('receipt', 'list', '--order', 'newest', '--limit', '1', '--json'),
    ]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toBe(`${completedId}\n${failedId}\n`);
    expect(all.stdout).toBe(allLocal.stdout);
    expect(failed.stdout).toBe(`${failedId}\n`);
    expect(failed.stdout).toBe(failedLocal.stdout);
    expect(newestJson.code, newestJson.stderr).toBe(0);
    expect(newestJson.stdout).toBe(newestJsonLocal.stdout);
    expect(JSON.parse(newestJson.stdout).map((r: { id: string }) => r.id)).toEqual([failedId]);
  });

  it('verify replays in the daemon: a match prints the in-process line and exits 0; --json is the report', async () => {
    const [text, inProcess, json] = await Promise.all([
      remote('receipt', 'verify', failedId),
      local('receipt', 'verify', failedId),
      remote('receipt', 'verify', completedId, '--json'),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(`match: receipt ${failedId} replays to the same result\n`);
    expect(text.stdout).toBe(inProcess.stdout);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ receiptId: completedId, match: true, mismatches: [] });
  });

  it('bad ids and bad filters are exit 2 naming the field; an unknown id is exit 2', async () => {
    const unknown = 'a'.repeat(64);
    const [badId, badSince, missing] = await Promise.all([
      remote('receipt', 'show', 'not-an-id'),
      remote('receipt', 'list', '--since', 'yesterday'),
      remote('receipt', 'verify', unknown),
    ]);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toMatch(/^thunderpac: \S+: params\.id: [^\n]*\n$/);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toContain('querystring.since');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(unknown);
  });
});
