/**
 * The daemon's seams: what every route plugin, the event bus and the lifecycle share.
 *
 * Everything above the backends reaches them through `executions` (one path for every
 * execution the daemon runs, so admission, in-flight accounting, metrics, draining and the
 * actor / request id sealed into each receipt happen in one place). Route plugins receive the
 * context and register their own routes; they never import each other.
 */

import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { Build } from '../runtime/build.js';
import type { ExecutionResult } from '../runtime/executor.js';
import type { SandboxOptions } from '../runtime/sandbox.js';
import type { Input } from '../runtime/types.js';
import type { Thunderpac } from '../thunderpac.js';
import type { DaemonConfig } from './config.js';
import type { DaemonMetrics } from './metrics.js';

export type Role = 'admin' | 'operator' | 'runner' | 'auditor';

/** Who is calling: a unix peer (by its credentials), a bearer token, or the daemon itself. */
export interface Actor {
  /** Stable id sealed into receipts: `uid:0`, `token:ci-bot`, `daemon`. */
  readonly id: string;
  readonly kind: 'unix' | 'token' | 'internal';
  readonly roles: readonly Role[];
  readonly uid?: number;
  readonly gid?: number;
  /** Supplementary groups of a unix peer (SO_PEERGROUPS), as the kernel saw them at connect. */
  readonly groups?: readonly number[];
  readonly pid?: number;
}

/** Every action the policy decides on; the route names the one it needs. */
export type Action =
  | 'health.read'
  | 'metrics.read'
  | 'build.create'
  | 'build.read'
  | 'execute'
  | 'job.read'
  | 'receipt.read'
  | 'receipt.verify'
  | 'model.read'
  | 'model.infer'
  | 'xdp.read'
  | 'xdp.attach'
  | 'xdp.detach'
  | 'map.read'
  | 'map.write'
  | 'p4.control'
  /** The QoS policy and live state (`GET /v1/qos`). */
  | 'qos.read'
  /** Re-read the config's `qos` section (`POST /v1/qos/reload`). */
  | 'qos.reload'
  /** The store's figures, snapshots, fsck and bundle export (`GET /v1/store…`). */
  | 'store.read'
  /** GC, compaction, snapshots taken or dropped, bundles imported (`POST /v1/store/…`). */
  | 'store.admin';

/** What an action is about, when the policy needs it (a build's owner, a model's name). */
export interface Resource {
  readonly buildId?: string;
  /** The owner's actor id (a job's submitter, a receipt's actor). */
  readonly owner?: string;
  /** A build's owners: every actor that uploaded it (builds are content-addressed). */
  readonly owners?: readonly string[];
  readonly model?: string;
  readonly iface?: string;
}

export interface Authorizer {
  /**
   * The request's actor if the policy allows `action` on `resource`; otherwise throws the typed
   * denial (UnauthenticatedError 401 without an identity, ForbiddenError 403 with one; both in
   * auth.ts, with `statusCode`, `code` and `action`), logged and counted in
   * `thunderpac_authz_denials_total{action}`.
   *
   * Roles (policy.ts): admin everything; operator XDP / maps / P4 control plus what a runner
   * does; runner builds, executions, jobs, receipts, model infer; auditor reads (receipts,
   * verify, builds, jobs, metrics, XDP status, maps, models). `health.read` needs only an
   * identity. Runners and operators are narrowed on `execute`, `build.read`, `job.read` and
   * `receipt.read`: allowed only when `resource.owner` / `resource.owners` names them (or, for
   * builds, a policy grant covers `resource.buildId`); pass the resource for those actions.
   */
  authorize(req: FastifyRequest, action: Action, resource?: Resource): Actor;
  /** The request's actor without a decision (null: no identity); for routes that filter by it. */
  identify(req: FastifyRequest): Actor | null;
}

/** Who and why, carried into the receipt. */
export interface Attribution {
  readonly actor: Actor;
  /** The request id of the HTTP request or bus message that caused the execution. */
  readonly requestId: string;
}

export interface ExecutionHooks {
  /** Called when the execution leaves the queue and starts (async jobs report `running`). */
  readonly onStart?: () => void;
}

export interface ExecutionService {
  /**
   * Run one execution: admission (bounded in-flight and queue), a sandbox from the pool for
   * these options, the executor, metrics. Rejects with a typed error when the daemon is
   * draining or full.
   */
  run(
    sandbox: SandboxOptions,
    request: { readonly build: Build; readonly input: Input; readonly entry: string },
    who: Attribution,
    hooks?: ExecutionHooks,
  ): Promise<ExecutionResult>;
  readonly inFlight: number;
  readonly queued: number;
  /** Stop admitting, then wait (at most `timeoutMs`) for what is in flight. */
  drain(timeoutMs: number): Promise<void>;
}

/**
 * The model registry served over the Open Inference Protocol (KServe v2). The event bus uses
 * the same service, so an inference is the same execution whichever way it arrives.
 */
export interface ModelService {
  /** Every model version served, with its load state (`GET /v1/models`). */
  list(): readonly ModelStatus[];
  /** Whether every served model is loaded (server readiness). */
  readonly allReady: boolean;
  /** One model's state, after waiting for a load in progress; unknown: 404. */
  status(name: string, version: string | undefined): Promise<ModelStatus>;
  /** The v2 model metadata (inputs/outputs with datatype and shape, -1 dynamic); unknown: 404. */
  metadata(name: string, version: string | undefined): Promise<ModelMetadata>;
  /**
   * Run one inference: `request` is a KServe v2 infer request body (JSON tensors). Resolves
   * with the v2 response body and the receipt id; rejects with a typed error (unknown model:
   * 404; a tensor of the wrong name, shape or datatype: 400 naming the tensor).
   */
  infer(
    name: string,
    version: string | undefined,
    request: unknown,
    who: Attribution,
  ): Promise<{
    readonly response: unknown;
    readonly receiptId: string;
    readonly status: 'completed' | 'failed';
  }>;
}

export interface ModelStatus {
  readonly name: string;
  readonly version: string;
  readonly platform: string;
  readonly state: 'unloaded' | 'loading' | 'ready' | 'failed';
  readonly ready: boolean;
  /** sha256 of the model file, once loaded. */
  readonly sha256: string | null;
  /** Why the last load failed. */
  readonly error?: string;
}

export interface ModelTensorMetadata {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
}

export interface ModelMetadata {
  readonly name: string;
  readonly versions: readonly string[];
  readonly platform: string;
  readonly inputs: readonly ModelTensorMetadata[];
  readonly outputs: readonly ModelTensorMetadata[];
}

export interface BuildRecord {
  readonly build: Build;
  /** Actor ids of everyone who uploaded it, first uploader first. */
  readonly owners: readonly string[];
}

export interface BuildRegistry {
  /** Store the build (idempotent: same bytes, same id) and record `owner` among its owners. */
  put(build: Build, owner: Actor): BuildRecord;
  /** The build and its owners; NotFoundError (404) when the daemon's store has no such build. */
  get(id: string): BuildRecord;
}

export interface DaemonContext {
  readonly tp: Thunderpac;
  readonly config: DaemonConfig;
  readonly log: FastifyBaseLogger;
  readonly metrics: DaemonMetrics;
  readonly auth: Authorizer;
  /** Uploaded builds with their owners (the store keeps them; a bounded cache keeps them hot). */
  readonly builds: BuildRegistry;
  readonly executions: ExecutionService;
  readonly models: ModelService;
  /** Aborted when the daemon starts to shut down: long polls and streams end on it. */
  readonly shutdown: AbortSignal;
}

/** A route plugin: registers its routes (under /v1/ or /v2/) on the app. */
export type RoutePlugin = (app: FastifyInstance, ctx: DaemonContext) => void | Promise<void>;
