#!lua name=meshgate
--
-- meshgate's Redis Function library (Redis 7: FUNCTION LOAD REPLACE).
--
-- Every writer changes a cluster's key and appends the change to that
-- cluster's log stream in one function call. Redis runs a function
-- atomically, so a reader that notes the log's last id and then scans the
-- keys, or tails the log with XREAD, never misses a change and never sees
-- a key change without its log entry. The log is trimmed approximately
-- (MAXLEN ~), which keeps XADD O(1); a reader whose position was trimmed
-- away notices it (XINFO STREAM) and resyncs from a full scan.
--
-- Functions:
--   FCALL mg_put 2 <key> <log> <value> <maxlen>
--       SET key value and XADD log MAXLEN ~ maxlen * op put key K value V.
--       Returns 1, or 0 when the key already held exactly this value (then
--       nothing is written and nothing logged: re-imports are cheap and
--       the log only carries real changes).
--   FCALL mg_del 2 <key> <log> <maxlen>
--       DEL key and XADD log ... op del key K value "". Returns 1, or 0
--       when the key did not exist (nothing logged).
--   FCALL mg_epoch 1 <epoch> <token>
--       SET epoch token unless it exists; returns the epoch in force. The
--       caller draws the token from a real random source (Lua in Redis has
--       none that is safe to rely on).
--
-- When mg_put/mg_del find the log missing (first write, or the stream was
-- deleted or lost with a failover), they receive an optional third key
-- <epoch> and argument <token> and renew the epoch with it, so readers
-- that remembered a position in the old log resync instead of replaying a
-- log that no longer describes the keys.

local function check_maxlen(v)
  local n = tonumber(v)
  if n == nil or n < 1 or n ~= math.floor(n) then
    return nil
  end
  return n
end

-- A new log: renew the epoch when the caller passed one.
local function renew_epoch(keys, token)
  if keys[3] ~= nil and token ~= nil and token ~= '' then
    if redis.call('EXISTS', keys[2]) == 0 then
      redis.call('SET', keys[3], token)
    end
  end
end

local function mg_put(keys, args)
  if #keys < 2 or #args < 2 then
    return redis.error_reply('ERR mg_put: usage: FCALL mg_put 2 key log value maxlen')
  end
  local maxlen = check_maxlen(args[2])
  if maxlen == nil then
    return redis.error_reply('ERR mg_put: maxlen must be a positive integer')
  end
  local key, log, value = keys[1], keys[2], args[1]
  if redis.call('GET', key) == value then
    return 0
  end
  renew_epoch(keys, args[3])
  redis.call('SET', key, value)
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'op', 'put', 'key', key, 'value', value)
  return 1
end

local function mg_del(keys, args)
  if #keys < 2 or #args < 1 then
    return redis.error_reply('ERR mg_del: usage: FCALL mg_del 2 key log maxlen')
  end
  local maxlen = check_maxlen(args[1])
  if maxlen == nil then
    return redis.error_reply('ERR mg_del: maxlen must be a positive integer')
  end
  local key, log = keys[1], keys[2]
  if redis.call('EXISTS', key) == 0 then
    return 0
  end
  renew_epoch(keys, args[2])
  redis.call('DEL', key)
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'op', 'del', 'key', key, 'value', '')
  return 1
end

local function mg_epoch(keys, args)
  if #keys < 1 or #args < 1 or args[1] == '' then
    return redis.error_reply('ERR mg_epoch: usage: FCALL mg_epoch 1 epoch token')
  end
  redis.call('SET', keys[1], args[1], 'NX')
  return redis.call('GET', keys[1])
end

redis.register_function('mg_put', mg_put)
redis.register_function('mg_del', mg_del)
redis.register_function('mg_epoch', mg_epoch)
