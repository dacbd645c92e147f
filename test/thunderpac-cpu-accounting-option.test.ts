/**
 * The embedding API passes `cpuAccounting` to its executor: off, receipts say `cpuUs: null`
 * (the measurement costs two getrusage calls per execution); on, they carry a number; a value
 * that is neither is refused with a typed error naming the option.
 */

import { describe, expect, it } from 'vitest';
import { createP4Build } from '../src/backends/p4/backend.js';
import { Thunderpac } from '../src/thunderpac.js';
import { ipv4Frame, sample } from './p4-helpers.js';

const build = createP4Build(sample('basic_router.p4'), { name: 'basic_router' });

async function cpuUsOf(cpuAccounting: boolean | undefined): Promise<number | null> {
  const tp = await Thunderpac.open({ store: false, ...(cpuAccounting !== undefined && { cpuAccounting }) });
  try {
    const r = await tp.execute(tp.sandbox({ backend: 'p4' }), {
      build,
      entry: 'ingress',
      input: { kind: 'packet', bytes: ipv4Frame({ dst: [10, 0, 2, 1] }), ingressPort: 3 },
    });
    expect(r.status).toBe('completed');
    return r.receipt.resources.cpuUs;
  } finally {
    await tp.close();
  }
}

describe('Thunderpac.open({ cpuAccounting })', () => {
  it('off: receipts carry cpuUs null; on and by default (an unmetered backend): a number', async () => {
    expect(await cpuUsOf(false)).toBeNull();
    expect(typeof (await cpuUsOf(true))).toBe('number');
    expect(typeof (await cpuUsOf(undefined))).toBe('number');
  });

  it('refuses a value that is not true, false or unmetered', async () => {
    await expect(
      Thunderpac.open({ store: false, cpuAccounting: 'sometimes' as unknown as boolean }),
    ).rejects.toMatchObject({ code: 'VALIDATION_TYPE' });
  });
});
