/** Placeholder: the event bus's owner replaces it (in-process bus, NATS JetStream consumer). */

import type { RoutePlugin } from '../context.js';

export const eventsRoutes: RoutePlugin = () => {};
