/**
 * Every route plugin the daemon serves, in registration order. Each file owns one noun and
 * registers its own routes; they share only the DaemonContext.
 */

import type { RoutePlugin } from '../context.js';
import { buildsRoutes } from './builds.js';
import { dagsRoutes } from './dags.js';
import { errorRoutes } from './errors.js';
import { eventsRoutes } from './events.js';
import { executionsRoutes } from './executions.js';
import { healthRoutes } from './health.js';
import { kserveRoutes } from './kserve.js';
import { metricsRoutes } from './metrics.js';
import { qosRoutes } from './qos.js';
import { receiptsRoutes } from './receipts.js';
import { storeRoutes } from './store.js';
import { xdpRoutes } from './xdp.js';

export const ROUTE_PLUGINS: readonly RoutePlugin[] = [
  // First: the error and not-found handlers and the JSON parser apply to every route after it.
  errorRoutes,
  healthRoutes,
  metricsRoutes,
  buildsRoutes,
  executionsRoutes,
  receiptsRoutes,
  storeRoutes,
  dagsRoutes,
  kserveRoutes,
  xdpRoutes,
  eventsRoutes,
  qosRoutes,
];
