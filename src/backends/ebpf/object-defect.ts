/**
 * What a structural check of an untrusted BPF object found wrong, and where. The checks
 * (elf-check.ts, btf-check.ts) throw it; object-vetting.ts turns it into a
 * MalformedObjectError naming the object, in one place.
 */
import type { MalformedObjectCheck } from './errors.js';

export class ObjectDefect extends Error {
  readonly check: MalformedObjectCheck;
  readonly problem: string;
  readonly section: string | undefined;
  readonly offset: number | undefined;

  constructor(check: MalformedObjectCheck, problem: string, section?: string, offset?: number) {
    super(problem);
    this.name = 'ObjectDefect';
    this.check = check;
    this.problem = problem;
    this.section = section;
    this.offset = offset;
  }
}
