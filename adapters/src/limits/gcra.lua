-- GCRA over several keys, all or none, on Redis's clock.
--
-- KEYS[i]  a limit key (already prefixed by the caller)
-- ARGV     per key, two integers: ARGV[2i-1] = emission interval in microseconds (1 / rate),
--          ARGV[2i] = tolerance in microseconds (burst * interval)
-- Returns  0 when every key admitted and all were consumed; otherwise the microseconds to wait
--          before every key would admit (the largest wait), and nothing was written.
--
-- Each key stores its theoretical arrival time (TAT) in microseconds since the Unix epoch. The
-- same arithmetic is in limits/gcra.rs (the in-process limiter); keep the two in step.

-- Redis < 5 needs this before writing after a non-deterministic command (TIME); later versions
-- replicate effects by default and keep the function as a no-op.
if redis.replicate_commands then
  redis.replicate_commands()
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local max_wait = 0
local pending = {}
local order = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  -- A key listed twice in one call is consumed twice: the second sees the first's TAT.
  local tat = pending[key]
  if tat == nil then
    tat = tonumber(redis.call('GET', key) or '0') or 0
    order[#order + 1] = key
  end
  if tat < now then
    tat = now
  end
  local new_tat = tat + interval
  local wait = new_tat - tolerance - now
  if wait > max_wait then
    max_wait = wait
  end
  pending[key] = new_tat
end

if max_wait > 0 then
  return max_wait
end

for _, key in ipairs(order) do
  local new_tat = pending[key]
  -- The key is worth keeping only until its TAT: after that it reads as a fresh key.
  local ttl_ms = math.ceil((new_tat - now) / 1000)
  if ttl_ms < 1 then
    ttl_ms = 1
  end
  -- '%.0f': Lua's default number-to-string keeps 14 digits, too few for epoch microseconds.
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', ttl_ms)
end
return 0
