/** Placeholder: the model service's owner replaces it (KServe v2 over the model registry). */

import { ThunderpacError } from '../runtime/errors.js';
import type { ModelService } from './context.js';

export class DaemonModels implements ModelService {
  async infer(): ReturnType<ModelService['infer']> {
    throw new ThunderpacError('DAEMON_NOT_IMPLEMENTED', 'model inference is not served yet');
  }
}
