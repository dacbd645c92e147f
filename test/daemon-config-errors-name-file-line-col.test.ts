/**
 * The daemon's config file is validated at start: each error names file:line:col and the field
 * path, unknown keys are refused, flags override the file, TCP needs TLS and tokens, and the
 * shipped example config passes the same validator. The real process exits 2 with one line.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_LIMITS, loadConfig } from '../src/daemon/config.js';
import { ensureDistBuilt, REPO_ROOT, runDaemon, tempDirectory } from './helpers/daemon.js';

const tmp = tempDirectory('tp-config-');
afterAll(() => tmp.remove());

const defaults = {
  socket: '/run/thunderpac/thunderpac.sock',
  store: () => '/var/lib/thunderpac/store',
  modelsDir: '/models',
  bpffsRoot: '/sys/fs/bpf/thunderpac',
};

let n = 0;
function configFile(text: string): string {
  const file = join(tmp.dir, `config-${++n}.json`);
  writeFileSync(file, text);
  return file;
}

function loadError(text: string, flags: Record<string, string> = {}): string {
  const file = configFile(text);
  try {
    loadConfig({ config: file, ...flags }, defaults);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.replace(file, 'config.json');
  }
  throw new Error('expected a ConfigError');
}

describe('config validation', () => {
  it('names file:line:col, the field path, what was expected and what was found', () => {
    const text = [
      '{',
      '  // comments are allowed',
      '  "limits": {',
      '    "maxInFlight": -3',
      '  }',
      '}',
    ].join('\n');
    expect(loadError(text)).toBe(
      'config.json:4:20: limits.maxInFlight: expected a positive integer (at most 1048576), found -3',
    );
  });

  it('refuses unknown keys at every level (a typo must not pass silently)', () => {
    expect(loadError('{\n  "limts": {}\n}')).toMatch(
      /^config\.json:2:3: limts: unknown key \(expected one of: socket,/,
    );
    expect(loadError('{ "limits": { "maxInflight": 3 } }')).toMatch(
      /^config\.json:1:15: limits\.maxInflight: unknown key/,
    );
    expect(loadError('{ "policy": { "uid": {} } }')).toMatch(/^config\.json:1:15: policy\.uid: unknown key/);
  });

  it('reports JSON syntax errors where they are', () => {
    expect(loadError('{\n  "socket": "/a.sock",\n  "store" "/x"\n}')).toBe(
      'config.json:3:11: not valid JSON: ColonExpected',
    );
  });

  it('validates the policy section with field path and line', () => {
    expect(loadError('{\n "policy": {\n  "uids": { "1000": ["runner", "root"] }\n }\n}')).toBe(
      'config.json:3:32: policy.uids.1000[1]: expected roles (admin, operator, runner, auditor), found "root"',
    );
    expect(loadError('{ "policy": { "uids": { "alice": ["runner"] } } }')).toMatch(
      /^config\.json:1:34: policy\.uids\.alice: expected a numeric uid as the key/,
    );
    expect(
      loadError('{ "policy": { "tokens": { "ci": { "sha256": "abc", "roles": ["runner"] } } } }'),
    ).toMatch(
      /^config\.json:1:45: policy\.tokens\.ci\.sha256: expected the sha256 of the token as 64 hex digits, found "abc"/,
    );
    expect(loadError('{ "policy": { "grants": [ { "to": "uid:1", "builds": ["nothex"] } ] } }')).toMatch(
      /^config\.json:1:55: policy\.grants\[0\]\.builds\[0\]: expected build ids/,
    );
  });

  it('refuses TCP without TLS, and TCP without a token to accept', () => {
    expect(loadError('{ "listen": "127.0.0.1:8443" }')).toMatch(/tls: TCP is served only with TLS/);
    const tls = '"tls": { "cert": "/c.pem", "key": "/k.pem" }';
    expect(loadError(`{ "listen": "127.0.0.1:8443", ${tls} }`)).toMatch(
      /listen: TCP is served only to bearer tokens/,
    );
    expect(loadError(`{ "listen": "localhost", ${tls} }`)).toMatch(
      /^config\.json:1:13: listen: expected HOST:PORT/,
    );
    expect(loadError('{}', { listen: '1.2.3.4:99999' })).toBe(
      "--listen: expected HOST:PORT, found '1.2.3.4:99999'",
    );
  });

  it('lets flags override the file and keeps every limit with its default', () => {
    const file = configFile(
      '{ "socket": "/run/a.sock", "store": "/srv/a", "logLevel": "warn", "limits": { "maxJobs": 7 } }',
    );
    const config = loadConfig({ config: file, socket: '/run/b.sock', logLevel: 'debug' }, defaults);
    expect(config.socket).toBe('/run/b.sock');
    expect(config.store).toBe('/srv/a');
    expect(config.logLevel).toBe('debug');
    expect(config.limits).toEqual({ ...DEFAULT_LIMITS, maxJobs: 7 });
    expect(config.source.locate(['limits', 'maxJobs'])).toBe(`${file}:1:90`);
  });

  it('reports a bad nats section (validated by the event bus) with its line', () => {
    expect(loadError('{\n  "nats": {\n    "url": "localhost"\n  }\n}')).toMatch(
      /^config\.json:3:12: nats\.url: expected/,
    );
  });

  it('accepts the shipped example config through the same validator', () => {
    const file = join(REPO_ROOT, 'deploy', 'thunderpac.example.json');
    const config = loadConfig({ config: file }, defaults);
    expect(config.socket).toBe('/run/thunderpac/thunderpac.sock');
    expect(config.socketMode).toBe(0o660);
    expect(config.limits).toEqual(DEFAULT_LIMITS);
    expect(config.policy?.uids.get(0)).toEqual(['admin']);
    expect(config.policy?.tokens.map((t) => t.name)).toEqual(['prometheus']);
    // Every limit is documented in the example with its default.
    const text = readFileSync(file, 'utf8');
    for (const [name, value] of Object.entries(DEFAULT_LIMITS))
      expect(text).toContain(`"${name}": ${value},`);
  });

  it('the unit file starts the daemon with the config in /etc and keeps the BPF capabilities', () => {
    const unit = readFileSync(join(REPO_ROOT, 'deploy', 'thunderpac.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\S*thunderpac daemon --config \/etc\/thunderpac\/config\.json$/m);
    expect(unit).toMatch(/^RuntimeDirectory=thunderpac$/m);
    for (const cap of ['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_PERFMON']) {
      expect(unit).toMatch(new RegExp(`^AmbientCapabilities=.*\\b${cap}\\b`, 'm'));
    }
  });
});

describe('the daemon process with a bad config', () => {
  beforeAll(() => ensureDistBuilt(), 300_000);
  it('exits 2 with one line naming file:line:col, before binding anything', async () => {
    const file = configFile('{\n  "limits": { "drainTimeoutMs": "soon" }\n}');
    const socket = join(tmp.dir, 'never.sock');
    const r = await runDaemon(['--config', file, '--socket', socket, '--store', join(tmp.dir, 'store')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `thunderpac daemon: ${file}:2:33: limits.drainTimeoutMs: expected a positive integer (at most 2147483647), found "soon"\n`,
    );
    expect(r.stdout).toBe('');
  });
});
