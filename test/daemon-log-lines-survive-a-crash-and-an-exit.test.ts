/**
 * The daemon's log destination (src/daemon/logging.ts) batches lines and writes them after the
 * event loop turn: what is still buffered when the process dies of an uncaught exception, or
 * exits, is written before it goes (a crash's last lines are the ones an operator needs).
 * Runs the real LogDestination (dist/) in a child process writing to a pipe.
 */

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { packagePath } from '../src/runtime/package-root.js';

const LOGGING = packagePath('dist', 'src', 'daemon', 'logging.js');

function runChild(body: string): { status: number | null; stdout: string; stderr: string } {
  const script = `import { LogDestination } from ${JSON.stringify(LOGGING)};\nconst dest = new LogDestination(1);\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('LogDestination', () => {
  it('writes the lines buffered when an uncaught exception ends the process', () => {
    const r = runChild(
      `for (let i = 0; i < 1000; i++) dest.write(JSON.stringify({ i }) + '\\n');\nthrow new Error('boom');`,
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('boom');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1000);
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([...Array(1000).keys()]);
  });

  it('keeps lines in order across turns and writes the rest at a plain exit', () => {
    const r = runChild(
      `dest.write('{"a":1}\\n');\nsetImmediate(() => { dest.write('{"a":2}\\n'); setTimeout(() => { dest.write('{"a":3}\\n'); process.exit(3); }, 5); });`,
    );
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('{"a":1}\n{"a":2}\n{"a":3}\n');
  });

  it('drops lines past its bound and says how many', () => {
    const r = runChild(
      `const small = new LogDestination(1, 100);\nfor (let i = 0; i < 10; i++) small.write(JSON.stringify({ line: i, pad: 'x'.repeat(20) }) + '\\n');`,
    );
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const kept = lines.filter((l) => 'line' in l);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(10);
    const note = lines.find((l) => l.msg === 'log lines dropped: stdout did not keep up');
    expect(note?.dropped).toBe(10 - kept.length);
  });
});
