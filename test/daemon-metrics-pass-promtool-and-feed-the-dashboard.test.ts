/**
 * /metrics of the real daemon, scraped over its socket after real work (WASM executions that
 * complete and fail, an ONNX inference, a 404 with a unique URL):
 *
 * - `promtool check metrics` (Prometheus's own linter) finds no problem in the scrape;
 * - the numbers say what happened: executions by backend and status, latency histograms,
 *   in-flight and queue back at 0, HTTP requests by route *pattern* (the unique URL appears
 *   nowhere: label values stay bounded), build info, process metrics;
 * - deploy/grafana-dashboard.json is a Grafana dashboard (schema, a Prometheus datasource
 *   variable, every panel on it) whose every PromQL expression names only metrics this scrape
 *   exports, so the dashboard cannot silently rot when a metric is renamed.
 */

import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startTestDaemon, type TestDaemon } from './helpers/daemon.js';

let daemon: TestDaemon;
let scrape = '';
const unique = `/v1/no-such-route-${randomUUID()}`;
const EXECUTIONS_OK = 5;

beforeAll(async () => {
  daemon = await startTestDaemon({ logLevel: 'warn' });
  const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm'));
  const build = await daemon.request({
    method: 'POST',
    path: '/v1/builds',
    body: { kind: 'wasm', name: 'echo.wasm', base64: echo.toString('base64') },
  });
  if (build.status !== 201) throw new Error(`upload: ${build.status} ${build.text}`);
  const execute = (entry: string) =>
    daemon.request({
      method: 'POST',
      path: '/v1/executions',
      body: { build: build.body.id, entry, input: { kind: 'text', text: 'hello' } },
    });
  for (let i = 0; i < EXECUTIONS_OK; i++) {
    const r = await execute('echo');
    if (r.status !== 200 || r.body.status !== 'completed') throw new Error(`echo: ${r.status} ${r.text}`);
  }
  const failed = await execute('fail');
  if (failed.status !== 200 || failed.body.status !== 'failed')
    throw new Error(`fail: ${failed.status} ${failed.text}`);
  // One ONNX inference (the shipped mlp), so the onnx backend and its worker pool report too.
  const sample = JSON.parse(readFileSync(join(REPO_ROOT, 'models', 'mlp', '1', 'sample_io.json'), 'utf8'));
  const x = sample.inputs.x;
  const infer = await daemon.request({
    method: 'POST',
    path: '/v2/models/mlp/infer',
    body: { inputs: [{ name: 'x', shape: x.shape, datatype: 'FP32', data: x.data }] },
  });
  if (infer.status !== 200) throw new Error(`infer: ${infer.status} ${infer.text}`);
  await daemon.request({ path: unique });
  const res = await daemon.request({ path: '/metrics' });
  if (res.status !== 200) throw new Error(`/metrics: ${res.status} ${res.text}`);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  scrape = res.text;
}, 180_000);
afterAll(async () => {
  await daemon?.stop();
});

/** The value of one sample line `name{labels} value` (labels in any order), or undefined. */
function sample(name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of scrape.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** Every series name the scrape can hold: each family, and a histogram's / summary's parts. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/** The metric names a PromQL expression reads (not functions, keywords, labels or strings). */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\$\{?\w+\}?/g, ''); // Grafana variables
  const names: string[] = [];
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const after = stripped.slice((m.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(')) continue; // a function
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    const before = stripped[(m.index ?? 0) - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue; // 1e-3, 5m
    names.push(word);
  }
  return names;
}

describe('the scrape', () => {
  it('passes promtool check metrics with no problems', () => {
    const check = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    expect(check.error, 'promtool is installed (scripts/setup.sh installs prometheus)').toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });

  it('counts executions by backend and status, with latency histograms in seconds', () => {
    expect(sample('thunderpac_executions_total', { backend: 'wasm', status: 'completed' })).toBe(
      EXECUTIONS_OK,
    );
    expect(sample('thunderpac_executions_total', { backend: 'wasm', status: 'failed' })).toBe(1);
    expect(sample('thunderpac_executions_total', { backend: 'onnx', status: 'completed' })).toBe(1);
    expect(sample('thunderpac_execution_duration_seconds_count', { backend: 'wasm' })).toBe(
      EXECUTIONS_OK + 1,
    );
    expect(sample('thunderpac_execution_duration_seconds_bucket', { backend: 'wasm', le: '+Inf' })).toBe(
      EXECUTIONS_OK + 1,
    );
    const seconds = sample('thunderpac_execution_duration_seconds_sum', { backend: 'wasm' }) ?? -1;
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(60); // seconds, not ms or ns
  });

  it('reports in-flight and queue depth back at zero, and the ONNX worker pool', () => {
    expect(sample('thunderpac_executions_in_flight')).toBe(0);
    expect(sample('thunderpac_execution_queue_depth')).toBe(0);
    expect(sample('thunderpac_onnx_pool_workers')).toBeGreaterThanOrEqual(1);
    expect(sample('thunderpac_onnx_pool_queue_depth')).toBe(0);
  });

  it('labels HTTP requests by route pattern and status code, never by raw URL', () => {
    expect(sample('thunderpac_http_requests_total', { route: '/v1/executions', status_code: '200' })).toBe(
      EXECUTIONS_OK + 1,
    );
    expect(
      sample('thunderpac_http_requests_total', { route: '/v2/models/:name/infer', status_code: '200' }),
    ).toBe(1);
    expect(
      sample('thunderpac_http_requests_total', { route: 'unmatched', status_code: '404' }),
    ).toBeGreaterThanOrEqual(1);
    expect(scrape).not.toContain(unique.slice(1));
    expect(scrape).not.toContain('/v2/models/mlp/infer');
  });

  it('carries build info and the standard process metrics', () => {
    expect(scrape).toMatch(/^thunderpac_build_info\{version="\d+\.\d+\.\d+[^"]*",node_version="[^"]+"\} 1$/m);
    expect(sample('process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(sample('process_open_fds')).toBeGreaterThan(0);
    expect(scrape).toMatch(/^# TYPE thunderpac_authz_denials_total counter$/m);
    expect(scrape).toMatch(/^# TYPE nodejs_eventloop_lag_p99_seconds gauge$/m);
  });
});

describe('deploy/grafana-dashboard.json', () => {
  // biome-ignore lint/suspicious/noExplicitAny: a dashboard is free-form JSON; a wrong read fails
  const dashboard: any = JSON.parse(
    readFileSync(join(REPO_ROOT, 'deploy', 'grafana-dashboard.json'), 'utf8'),
  );
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const panels: any[] = dashboard.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]);
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const queries: { panel: string; expr: string }[] = panels.flatMap((p: any) =>
    // biome-ignore lint/suspicious/noExplicitAny: as above
    (p.targets ?? []).map((t: any) => ({ panel: p.title, expr: t.expr })),
  );

  it('is a Grafana dashboard with a Prometheus datasource variable used by every panel', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(typeof dashboard.title).toBe('string');
    expect(typeof dashboard.uid).toBe('string');
    const ds = dashboard.templating.list.find((v: { type: string }) => v.type === 'datasource');
    expect(ds?.query).toBe('prometheus');
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels.filter((q) => q.type !== 'row')) {
      expect(p.datasource?.uid, p.title).toBe(`\${${ds.name}}`);
      expect(p.gridPos, p.title).toMatchObject({ w: expect.any(Number), h: expect.any(Number) });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('shows p50/p95/p99 latency per backend, error rate, denials, queue depth and XDP pps', () => {
    const all = queries.map((q) => q.expr).join('\n');
    for (const q of ['0.5', '0.95', '0.99']) {
      expect(all).toContain(
        `histogram_quantile(${q}, sum by (backend, le) (rate(thunderpac_execution_duration_seconds_bucket`,
      );
    }
    expect(all).toContain('thunderpac_executions_total{status="failed"}');
    expect(all).toContain('thunderpac_authz_denials_total');
    expect(all).toContain('thunderpac_execution_queue_depth');
    expect(all).toContain('rate(thunderpac_xdp_packets_total[1m])');
    expect(all).toContain('process_resident_memory_bytes');
  });

  it('reads only metrics the daemon exports', () => {
    const exported = exportedNames(scrape);
    expect(exported.size).toBeGreaterThan(20);
    const missing = queries.flatMap(({ panel, expr }) =>
      metricNamesIn(expr)
        .filter((n) => !exported.has(n))
        .map((n) => `${panel}: ${n}`),
    );
    expect(missing).toEqual([]);
    // The check itself sees names (it would pass vacuously if it found none).
    expect(queries.flatMap((q) => metricNamesIn(q.expr)).length).toBeGreaterThan(queries.length - 1);
    expect(
      metricNamesIn('sum by (backend, le) (rate(a_b_bucket{x="y"}[5m])) / on (c) c_total offset 5m'),
    ).toEqual(['a_b_bucket', 'c_total']);
  });
});
