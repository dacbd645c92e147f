/**
 * The `qos.global` section's settings (Redis URL, failMode, leases, timeouts, key prefix) are
 * validated into the policy with defaults, and every bad value is a QosPolicyError naming its
 * field path under `qos.global`.
 */

import { describe, expect, it } from 'vitest';
import { parseQosPolicy, QosPolicyError } from '../src/qos/config.js';

const url = 'redis://127.0.0.1:6379';

describe('qos.global settings', () => {
  it('defaults: fail open, leases sized per tier, 1 s lease life, 50 ms command timeout, quotas shared', () => {
    expect(parseQosPolicy({ global: { redisUrl: url } }).global).toEqual({
      redisUrl: url,
      failMode: 'open',
      leaseSize: null,
      leaseTtlMs: 1000,
      commandTimeoutMs: 50,
      keyPrefix: 'thunderpac:qos:',
      quotas: true,
    });
  });

  it('names the field of each bad value', () => {
    const bad: [object, string][] = [
      [{ redisUrl: 'http://x' }, 'qos.global.redisUrl'],
      [{ redisUrl: url, failMode: 'maybe' }, 'qos.global.failMode'],
      [{ redisUrl: url, leaseSize: 0 }, 'qos.global.leaseSize'],
      [{ redisUrl: url, leaseSize: 2.5 }, 'qos.global.leaseSize'],
      [{ redisUrl: url, leaseTtlMs: 0 }, 'qos.global.leaseTtlMs'],
      [{ redisUrl: url, commandTimeoutMs: 120_000 }, 'qos.global.commandTimeoutMs'],
      [{ redisUrl: url, keyPrefix: 'a b' }, 'qos.global.keyPrefix'],
      [{ redisUrl: url, leases: 3 }, 'qos.global.leases'],
      [{ redisUrl: url, quotas: 'yes' }, 'qos.global.quotas'],
    ];
    for (const [global, path] of bad) {
      let err: unknown;
      try {
        parseQosPolicy({ global });
      } catch (e) {
        err = e;
      }
      expect(err, path).toBeInstanceOf(QosPolicyError);
      expect((err as Error).message.startsWith(`${path}: `), (err as Error).message).toBe(true);
    }
  });
});
