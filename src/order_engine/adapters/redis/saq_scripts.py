"""The Lua scripts of ``saq_fenced.FencedRedisQueue``, one atomic step each.

Keys follow SAQ's layout for queue ``N``: ``saq:N:incomplete`` (zset: 0 for a
queued or running job, the due time in Redis ``TIME`` seconds for a scheduled
one), ``saq:N:queued`` and ``saq:N:active`` (lists), the job itself at
``saq:job:N:<order id>``; and ours: ``saq:N:rerun`` (set), ``saq:N:suspects``
(set), ``saq:N:beat:<job id>`` (a heartbeat that expires on the server).
Invariant: a job is in ``queued`` exactly when its score is 0 and it is not in
``active``.
"""

from __future__ import annotations

# KEYS: incomplete, job, queued, active, rerun. ARGV: job json, delay seconds.
# Returns 0 (queued or scheduled: no-op), 1 (enqueued), 2 (running: re-run remembered).
ENQUEUE = """
if redis.call('ZSCORE', KEYS[1], KEYS[2]) then
  if redis.call('LPOS', KEYS[4], KEYS[2]) then
    redis.call('SADD', KEYS[5], KEYS[2])
    return 2
  end
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
local delay = tonumber(ARGV[2])
if delay > 0 then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(t[2]) / 1000000 + delay, KEYS[2])
else
  redis.call('ZADD', KEYS[1], 0, KEYS[2])
  redis.call('RPUSH', KEYS[3], KEYS[2])
end
return 1
"""

# KEYS: active, queued. ARGV: job id popped by a stopping worker.
PUSH_BACK = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

# Shared prologue: KEYS[1] is the job; ARGV[1] the worker id that must hold it.
FENCE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local held = cjson.decode(current)
if held.status ~= 'active' or held.worker_id ~= ARGV[1] then return 0 end
"""

# KEYS: job, active, beat. ARGV: worker id, job json, beat ms.
MARK_ACTIVE = """
local current = redis.call('GET', KEYS[1])
if not current or not redis.call('LPOS', KEYS[2], KEYS[1]) then return 0 end
local held = cjson.decode(current)
if held.status == 'active' and held.worker_id ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3])
return 1
"""

# KEYS: job, active, incomplete, queued, rerun, beat. ARGV: worker id, job json, delay.
RETRY = (
    FENCE
    + """
redis.call('LREM', KEYS[2], 1, KEYS[1])
redis.call('DEL', KEYS[6])
redis.call('SREM', KEYS[5], KEYS[1])
redis.call('SET', KEYS[1], ARGV[2])
local delay = tonumber(ARGV[3])
if delay > 0 then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], tonumber(t[1]) + tonumber(t[2]) / 1000000 + delay, KEYS[1])
else
  redis.call('ZADD', KEYS[3], 0, KEYS[1])
  redis.call('LPUSH', KEYS[4], KEYS[1])
end
return 1
"""
)

# KEYS: job, active, incomplete, queued, rerun, beat. ARGV: worker id, fresh job json.
FINISH = (
    FENCE
    + """
redis.call('LREM', KEYS[2], 1, KEYS[1])
redis.call('DEL', KEYS[6])
if redis.call('SREM', KEYS[5], KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], 0, KEYS[1])
  redis.call('RPUSH', KEYS[4], KEYS[1])
  return 2
end
redis.call('ZREM', KEYS[3], KEYS[1])
redis.call('DEL', KEYS[1])
return 1
"""
)

# Compare-and-set release of a job held in ``active`` (sweep, or leftovers at stop).
# KEYS: job, active, incomplete, queued, rerun, beat.
# ARGV: expected json ('' = the job key is gone), new json ('' = drop the job),
#       fresh job json (for a pending re-run), '1' to refuse while a heartbeat exists.
RELEASE = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if current then return 0 end
  redis.call('LREM', KEYS[2], 0, KEYS[1])
  redis.call('ZREM', KEYS[3], KEYS[1])
  redis.call('SREM', KEYS[5], KEYS[1])
  return 4
end
if current ~= ARGV[1] then return 0 end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[6]) == 1 then return 0 end
if redis.call('LREM', KEYS[2], 1, KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[6])
if ARGV[2] ~= '' then
  redis.call('SREM', KEYS[5], KEYS[1])
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], 0, KEYS[1])
  redis.call('LPUSH', KEYS[4], KEYS[1])
  return 1
end
if redis.call('SREM', KEYS[5], KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('ZADD', KEYS[3], 0, KEYS[1])
  redis.call('RPUSH', KEYS[4], KEYS[1])
  return 2
end
redis.call('ZREM', KEYS[3], KEYS[1])
redis.call('DEL', KEYS[1])
return 3
"""

# KEYS: incomplete, queued.
SCHEDULE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '(0', now)
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 0, id)
  redis.call('RPUSH', KEYS[2], id)
end
return due
"""

# KEYS: lock, active, suspects. ARGV: lock ms, beat key prefix.
SWEEP = """
if not redis.call('SET', KEYS[1], 1, 'NX', 'PX', ARGV[1]) then return {} end
local dead, silent = {}, {}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', ARGV[2] .. id) == 0 then
    table.insert(silent, id)
    if redis.call('SISMEMBER', KEYS[3], id) == 1 then table.insert(dead, id) end
  end
end
redis.call('DEL', KEYS[3])
for _, id in ipairs(silent) do redis.call('SADD', KEYS[3], id) end
redis.call('PEXPIRE', KEYS[3], ARGV[1] * 10)
return dead
"""

# KEYS: job1, beat1, job2, beat2, ... ARGV: worker id, beat ms.
BEAT = """
local beaten = 0
for i = 1, #KEYS, 2 do
  local current = redis.call('GET', KEYS[i])
  if current then
    local held = cjson.decode(current)
    if held.status == 'active' and held.worker_id == ARGV[1] then
      redis.call('SET', KEYS[i + 1], ARGV[1], 'PX', ARGV[2])
      beaten = beaten + 1
    end
  end
end
return beaten
"""
