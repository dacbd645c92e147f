/** Placeholder: this plugin's owner replaces it (see src/daemon/routes/index.ts). */

import type { RoutePlugin } from '../context.js';

export const metricsRoutes: RoutePlugin = () => {};
