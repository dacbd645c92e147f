export {
  AIMD_DEFAULTS,
  AimdLimit,
  type AimdOptions,
  ConcurrencyLimiter,
  GRADIENT_DEFAULTS,
  GradientLimit,
  type GradientOptions,
  LIMIT_BOUNDS_DEFAULTS,
  type LimitAlgorithm,
  type LimitBounds,
  type LimitListener,
  type LimitSample,
} from './adaptive-limit.js';
export {
  type BreakerListener,
  type BreakerState,
  CIRCUIT_BREAKER_DEFAULTS,
  CircuitBreaker,
  type CircuitBreakerOptions,
  CircuitBreakers,
  REFUSED,
  resolveBreakerOptions,
} from './circuit-breaker.js';
export { AdmissionControl } from './admission.js';
