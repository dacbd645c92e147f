/**
 * The Lua scripts run atomically inside Redis. Time is Redis's own (`TIME`), never a client's, so
 * hosts with skewed clocks agree on every key; tests may pass an explicit time instead.
 *
 * Redis's Lua numbers are IEEE doubles like JavaScript's, and the GCRA script does exactly the
 * operations of the in-process GcraLimiter (src/qos/limiters/gcra.ts) in the same order, so one
 * definition decides identically in both places.
 */

/**
 * GCRA with leases. KEYS[1]: the key. ARGV: rate, periodUs, interval whole µs, interval remainder
 * (1/rate µs), tolerance (burst × periodUs), need (the cost of this check), want (≥ need: how many
 * to take at most, for a host's lease), now µs ('' = Redis TIME).
 *
 * Admits iff need fits (debt + need·periodUs ≤ tolerance), then takes min(want, what fits).
 * Returns { allowed 0/1, granted, waitUs, remaining after, resetUs after }.
 * The key (TAT as "whole frac") expires when the debt is paid: an idle key is a fresh key.
 */
export const GCRA_LEASE_SCRIPT = `
local rate = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local iwhole = tonumber(ARGV[3])
local irem = tonumber(ARGV[4])
local tol = tonumber(ARGV[5])
local need = tonumber(ARGV[6])
local want = tonumber(ARGV[7])
local now
if ARGV[8] ~= '' then
  now = tonumber(ARGV[8])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local whole = now
local frac = 0
local v = redis.call('GET', KEYS[1])
if v then
  local sp = string.find(v, ' ', 1, true)
  local w = tonumber(string.sub(v, 1, sp - 1))
  local f = tonumber(string.sub(v, sp + 1))
  if w > now or (w == now and f > 0) then
    whole = w
    frac = f
  end
end
local debt = (whole - now) * rate + frac
local over = debt + need * period - tol
if over > 0 then
  return {0, 0, math.ceil(over / rate), 0, math.ceil(debt / rate)}
end
local fit = math.floor((tol - debt) / period)
local granted = want
if fit < granted then granted = fit end
if granted < need then granted = need end
frac = frac + granted * irem
local carry = math.floor(frac / rate)
whole = whole + granted * iwhole + carry
frac = frac - carry * rate
local after = (whole - now) * rate + frac
local resetUs = math.ceil(after / rate)
if after > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f %.0f', whole, frac), 'PX', math.ceil(resetUs / 1000) + 1)
end
return {1, granted, 0, math.floor((tol - after) / period), resetUs}
`;

/**
 * Quota consume. KEYS[1]: the key (hash: used, start). ARGV: n, limit, periodMs (0 = never),
 * alignment offset ms, rolling 0/1, now ms ('' = Redis TIME).
 *
 * A usage belongs to the period that started at `start`; once now ≥ start + periodMs it is
 * dropped (the periodic reset). Consumes iff used + n ≤ limit; the key expires at resets_at.
 * Returns { allowed 0/1, used, resetsAt ms (-1 = never) }.
 */
export const QUOTA_CONSUME_SCRIPT = `
local n = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local offset = tonumber(ARGV[4])
local rolling = ARGV[5] == '1'
local now
if ARGV[6] ~= '' then
  now = tonumber(ARGV[6])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local h = redis.call('HMGET', KEYS[1], 'used', 'start')
local used = 0
local start = nil
if h[1] then
  used = tonumber(h[1])
  start = tonumber(h[2])
end
if start and period > 0 and now >= start + period then
  used = 0
  start = nil
end
if not start then
  if period == 0 then
    start = 0
  elseif rolling then
    start = now
  else
    start = math.floor((now - offset) / period) * period + offset
  end
end
local resets = -1
if period > 0 then resets = start + period end
if used + n > limit then
  return {0, used, resets}
end
if n > 0 then
  used = used + n
  redis.call('HSET', KEYS[1], 'used', string.format('%.0f', used), 'start', string.format('%.0f', start))
  if period > 0 then redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', resets)) end
end
return {1, used, resets}
`;
