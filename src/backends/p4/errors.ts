/**
 * Errors of the behavioral switch: a BMv2 JSON it cannot load, and refusals of the runtime
 * table/extern API (wrong key width, unknown action, full table...). Codes are stable.
 */

import { ThunderpacError } from '../../runtime/errors.js';

export type P4RuntimeErrorCode =
  | 'P4_JSON'
  | 'P4_TABLE_UNKNOWN'
  | 'P4_KEY_COUNT'
  | 'P4_KEY_WIDTH'
  | 'P4_KEY_KIND'
  | 'P4_ACTION_UNKNOWN'
  | 'P4_ACTION_DATA'
  | 'P4_TABLE_FULL'
  | 'P4_ENTRY_UNKNOWN'
  | 'P4_ENTRY_DUPLICATE'
  | 'P4_PRIORITY'
  | 'P4_CONST_TABLE'
  | 'P4_EXTERN_UNKNOWN'
  | 'P4_INDEX_RANGE'
  | 'P4_VALUE_WIDTH';

export class P4RuntimeError extends ThunderpacError {
  constructor(code: P4RuntimeErrorCode, message: string) {
    super(code, message);
  }
}
