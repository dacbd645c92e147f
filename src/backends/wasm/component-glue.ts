/**
 * Resettable jco glue: the JS state a component instance keeps between calls, put back.
 *
 * jco's generated `instantiate` keeps, per resource type, a handle table (`handleTableN`, an
 * array with a `_createdReps` set), a table of host objects by rep (`captureTableN`) and a rep
 * counter (`captureCntN`). The handles the guest gets (i32s it stores and may print) come from
 * those tables; a component made with the preview 1 adapter never drops its stdin/stdout/stderr
 * streams, so after one run the tables hold them and the next run on the same instance would
 * get other handle numbers than a fresh instance does, and the tables would grow every run.
 *
 * This module rewrites the generated source (once per transpile) to hand the host a function
 * that restores all of those to their values at the end of instantiation. It relies on jco's
 * naming (checked against jco 1.35); where the patterns are not found, `injectGlueReset`
 * says so and the component runs on a fresh instance per execution, as before.
 *
 * Not restored, because nothing a synchronous command run does can observe it: jco's task id
 * counters and async bookkeeping (empty again after every call that returns). A call that
 * throws leaves the glue marked trapped; the runner never reuses an instance after that.
 */

/** The key of `imports` through which the injected code hands over its reset function. */
export const GLUE_RESET_IMPORT = 'thunderpac:glue-reset';

export type GlueReset = () => void;

/** The glue source with the reset hook, or undefined where jco's shape is not the one known. */
export function injectGlueReset(js: string): string | undefined {
  const tables = [...js.matchAll(/^\s*const (handleTable\d+) = \[T_FLAG, 0\];$/gm)].map((m) => m[1]!);
  const captures = [...js.matchAll(/^\s*const (captureTable\d+)\s*=\s*new Map\(\);$/gm)].map((m) => m[1]!);
  const counters = [...js.matchAll(/^\s*let (captureCnt\d+)\s*=\s*0;$/gm)].map((m) => m[1]!);
  const borrows = /^\s*let curResourceBorrows = \[\];$/m.test(js);
  // The generator's last statement returns the component's exports: the hook goes before it,
  // where every table exists and instantiation is complete.
  const end = js.indexOf('\n})();\nlet promise');
  const ret = js.lastIndexOf('\n  return {', end);
  if (end < 0 || ret < 0 || tables.length === 0) return undefined;
  const hook = `
  if (typeof imports['${GLUE_RESET_IMPORT}'] === 'function') {
    const tpTables = [${tables.map((t) => `[${t}, ${t}.slice(), [...${t}._createdReps]]`).join(', ')}];
    const tpCaptures = [${captures.map((c) => `[${c}, [...${c}]]`).join(', ')}];
    const tpCounters = [${counters.join(', ')}];
    imports['${GLUE_RESET_IMPORT}'](() => {
      for (const [t, a, reps] of tpTables) {
        t.length = 0;
        for (const v of a) t.push(v);
        t._createdReps = new Set(reps);
      }
      for (const [m, entries] of tpCaptures) {
        m.clear();
        for (const [k, v] of entries) m.set(k, v);
      }
      ${counters.map((c, i) => `${c} = tpCounters[${i}];`).join(' ')}
      ${borrows ? 'curResourceBorrows = [];' : ''}
    });
  }`;
  return quietDebugLog(js.slice(0, ret) + hook + js.slice(ret));
}

/**
 * jco's `_debugLog` reads `process.env.JCO_DEBUG` on every call, several times per host call
 * (process.env is a slow accessor: ~7% of a reused run here). Read it once per instantiation.
 */
function quietDebugLog(js: string): string {
  const check = 'if (!globalThis?.process?.env?.JCO_DEBUG) { return; }';
  const at = js.indexOf(`const _debugLog = (...args) => {\n    ${check}`);
  if (at < 0) return js;
  return `${js.slice(0, at)}const tpJcoDebug = !!globalThis?.process?.env?.JCO_DEBUG;\n  ${js
    .slice(at)
    .replace(check, 'if (!tpJcoDebug) { return; }')}`;
}
