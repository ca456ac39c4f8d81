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
--   FCALL mg_batch <2+N> <log> <epoch> <key1> .. <keyN> <maxlen> <token>
--                  <op1> <value1> .. <opN> <valueN>
--       N changes (1 <= N <= 1000) in one call, in order: op "put" is mg_put
--       of key i with value i, op "del" is mg_del of key i (its value is
--       ignored, "" by convention). Each change that writes appends its own
--       log entry (op/key/value, MAXLEN ~ maxlen), exactly as N single
--       calls would, and later changes see earlier ones (put k a, put k a
--       logs one entry). Returns an array of N integers, 1 or 0 as the
--       single calls return. All keys are declared (Redis Functions need
--       them in KEYS). The token renews the epoch as for mg_put ("" skips
--       that). Atomic: the arguments are checked and every key read before
--       the first write, so an error reply (bad argument, a key of another
--       type) means nothing was written.
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
--
-- Lease and fencing (docs/kvstore.md, "Lease and fencing"): several
-- replicas of a writer may run, and exactly one of them writes: the one
-- whose random token is the value of the lease key (a string with a TTL).
--   FCALL mg_lease_acquire 1 <lease> <token> <ttl_ms>
--       SET lease token NX PX ttl_ms; when the lease holds this token
--       already, PEXPIRE it instead (a renewal). Returns an array {1 or 0,
--       holder, pttl}: 1 when the caller holds the lease now (holder is its
--       token, pttl ttl_ms), 0 when another token holds it (holder is that
--       token, pttl its PTTL in ms; -1 when it was set without a TTL).
--   FCALL mg_lease_renew 1 <lease> <token> <ttl_ms>
--       PEXPIRE lease ttl_ms when it holds token: 1; else 0 (the lease was
--       lost: it lapsed, or another token holds it) and nothing changes.
--   FCALL mg_lease_release 1 <lease> <token>
--       DEL lease when it holds token: 1; else 0.
-- The fenced functions take the lease key as an extra first key and the
-- caller's lease token as an extra first argument, and refuse with an
-- error reply "FENCED <function>: lease <lease> is not held by this
-- writer" when GET lease is not that token, before anything else is read
-- or written. A writer that was paused or cut off while another took the
-- lease over (or while it lapsed) can therefore write nothing afterwards.
--   FCALL mg_fbatch <3+N> <lease> <log> <epoch> <key1> .. <keyN>
--                   <ltoken> <maxlen> <token> <op1> <value1> .. <opN> <valueN>
--       mg_batch, fenced. A fenced mg_put or mg_del is mg_fbatch of one.
--   FCALL mg_fset <1+N> <lease> <key1> .. <keyN> <ltoken> <px_ms>
--                 <value1> .. <valueN>
--       SET of N plain keys (1 <= N <= 1000), not logged (canaries, the
--       heartbeat, the removal marker), each with PX px_ms, or without an
--       expiry when px_ms is 0. Returns N.
--   FCALL mg_fdel <1+N> <lease> <key1> .. <keyN> <ltoken>
--       DEL of N plain keys (1 <= N <= 1000), not logged (canaries, a log
--       stream, an epoch, the removal marker). Returns how many existed.
--   FCALL mg_fepoch 2 <lease> <epoch> <ltoken> <token>
--       mg_epoch, fenced.

local function check_maxlen(v)
  local n = tonumber(v)
  if n == nil or n < 1 or n ~= math.floor(n) then
    return nil
  end
  return n
end

-- A new log: renew the epoch when the caller passed one.
local function renew_epoch(log, epoch, token)
  if epoch ~= nil and token ~= nil and token ~= '' then
    if redis.call('EXISTS', log) == 0 then
      redis.call('SET', epoch, token)
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
  renew_epoch(keys[2], keys[3], args[3])
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
  renew_epoch(keys[2], keys[3], args[2])
  redis.call('DEL', key)
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'op', 'del', 'key', key, 'value', '')
  return 1
end

-- Bounds the work of one call: Redis runs nothing else meanwhile.
local BATCH_MAX = 1000

-- mg_batch and mg_fbatch (as @p name in errors, @p usage its call form).
local function batch(name, usage, keys, args)
  local n = #keys - 2
  if n < 1 or #args ~= 2 + 2 * n then
    return redis.error_reply('ERR ' .. name .. ': usage: ' .. usage)
  end
  if n > BATCH_MAX then
    return redis.error_reply('ERR ' .. name .. ': at most ' .. BATCH_MAX .. ' changes per call')
  end
  -- XADD gets maxlen as the caller's string (digits only, checked here:
  -- XADD must not fail half-way): a Lua number would be formatted back
  -- into a string on every call.
  local maxlen_arg = args[1]
  if check_maxlen(maxlen_arg) == nil or string.find(maxlen_arg, '^[1-9]%d*$') == nil then
    return redis.error_reply('ERR ' .. name .. ': maxlen must be a positive integer')
  end
  local log, epoch, token = keys[1], keys[2], args[2]
  -- Read phase, before any write. Every redis.call costs about as much as
  -- the work it does here, so the keys are read with one MGET, not one GET
  -- each. cur[key]: the key's value, false when absent, true when it holds
  -- another type (MGET gives nil for those too: told apart by EXISTS,
  -- called only when some key came back nil).
  local distinct, first = {}, {}
  for i = 1, n do
    local op, key = args[1 + 2 * i], keys[2 + i]
    if op ~= 'put' and op ~= 'del' then
      return redis.error_reply('ERR ' .. name .. ': op ' .. i .. ' must be put or del')
    end
    if first[key] == nil then
      first[key] = op
      distinct[#distinct + 1] = key
    end
  end
  local vals = redis.call('MGET', unpack(distinct))
  local cur, absent = {}, {}
  for j = 1, #distinct do
    local v = vals[j]
    cur[distinct[j]] = v
    if v == false then
      absent[#absent + 1] = distinct[j]
    end
  end
  if #absent > 0 and redis.call('EXISTS', unpack(absent)) > 0 then
    for _, key in ipairs(absent) do
      if redis.call('EXISTS', key) == 1 then
        if first[key] == 'put' then
          -- mg_put's GET would fail here: refuse the whole batch.
          return redis.error_reply('WRONGTYPE ' .. name .. ': ' .. key ..
            ' holds a value that is not a string')
        end
        cur[key] = true
      end
    end
  end
  -- Write phase: the single calls' logic over the tracked values, one log
  -- entry per change that writes; the keys get their final values at the
  -- end (MSET / DEL), which leaves the same state as the calls in order.
  local out, renewed, changed, nchanged = {}, false, {}, 0
  for i = 1, n do
    local op, key, value = args[1 + 2 * i], keys[2 + i], args[2 + 2 * i]
    local r = 0
    if op == 'put' then
      if cur[key] ~= value then
        r = 1
        cur[key] = value
      end
    elseif cur[key] ~= false then
      r = 1
      value = ''
      cur[key] = false
    end
    if r == 1 then
      if not renewed then
        renew_epoch(log, epoch, token)
        renewed = true
      end
      if not changed[key] then
        changed[key] = true
        nchanged = nchanged + 1
      end
      redis.call('XADD', log, 'MAXLEN', '~', maxlen_arg, '*', 'op', op, 'key', key, 'value', value)
    end
    out[i] = r
  end
  if nchanged > 0 then
    local sets, dels = {}, {}
    for _, key in ipairs(distinct) do
      if changed[key] then
        if cur[key] == false then
          dels[#dels + 1] = key
        else
          sets[#sets + 1] = key
          sets[#sets + 1] = cur[key]
        end
      end
    end
    if #sets > 0 then
      redis.call('MSET', unpack(sets))
    end
    if #dels > 0 then
      redis.call('DEL', unpack(dels))
    end
  end
  return out
end

local function mg_batch(keys, args)
  return batch('mg_batch', 'FCALL mg_batch 2+N log epoch key1..keyN maxlen token ' ..
    'op1 value1 .. opN valueN', keys, args)
end

local function epoch(name, usage, keys, args)
  if #keys < 1 or #args < 1 or args[1] == '' then
    return redis.error_reply('ERR ' .. name .. ': usage: ' .. usage)
  end
  redis.call('SET', keys[1], args[1], 'NX')
  return redis.call('GET', keys[1])
end

local function mg_epoch(keys, args)
  return epoch('mg_epoch', 'FCALL mg_epoch 1 epoch token', keys, args)
end

-- ---- lease ----

-- A TTL in ms as PEXPIRE takes it, or nil.
local function check_ttl(v)
  if v == nil or string.find(v, '^[1-9]%d*$') == nil or #v > 15 then
    return nil
  end
  return v
end

local function lease_args(name, usage, keys, args, nargs)
  if #keys ~= 1 or #args ~= nargs or args[1] == '' then
    return 'ERR ' .. name .. ': usage: ' .. usage
  end
  if nargs == 2 and check_ttl(args[2]) == nil then
    return 'ERR ' .. name .. ': ttl_ms must be a positive integer'
  end
  return nil
end

local function mg_lease_acquire(keys, args)
  local bad = lease_args('mg_lease_acquire', 'FCALL mg_lease_acquire 1 lease token ttl_ms',
    keys, args, 2)
  if bad then
    return redis.error_reply(bad)
  end
  local lease, token, ttl = keys[1], args[1], args[2]
  local cur = redis.call('GET', lease)
  if cur == false then
    redis.call('SET', lease, token, 'PX', ttl)
  elseif cur == token then
    redis.call('PEXPIRE', lease, ttl)
  else
    return {0, cur, redis.call('PTTL', lease)}
  end
  return {1, token, tonumber(ttl)}
end

local function mg_lease_renew(keys, args)
  local bad = lease_args('mg_lease_renew', 'FCALL mg_lease_renew 1 lease token ttl_ms',
    keys, args, 2)
  if bad then
    return redis.error_reply(bad)
  end
  if redis.call('GET', keys[1]) ~= args[1] then
    return 0
  end
  redis.call('PEXPIRE', keys[1], args[2])
  return 1
end

local function mg_lease_release(keys, args)
  local bad = lease_args('mg_lease_release', 'FCALL mg_lease_release 1 lease token',
    keys, args, 1)
  if bad then
    return redis.error_reply(bad)
  end
  if redis.call('GET', keys[1]) ~= args[1] then
    return 0
  end
  redis.call('DEL', keys[1])
  return 1
end

-- ---- fenced functions ----

-- keys/args without their first element (the lease key and token).
local function shift(t)
  local out = {}
  for i = 2, #t do
    out[i - 1] = t[i]
  end
  return out
end

-- Runs fn(name, usage, keys, args) without the lease key and token when
-- the lease holds the token; refuses (FENCED) before anything else when
-- it does not.
local function fenced(name, usage, fn, keys, args)
  if #keys < 2 or #args < 1 or args[1] == '' then
    return redis.error_reply('ERR ' .. name .. ': usage: ' .. usage)
  end
  if redis.call('GET', keys[1]) ~= args[1] then
    return redis.error_reply('FENCED ' .. name .. ': lease ' .. keys[1] ..
      ' is not held by this writer')
  end
  return fn(name, usage, shift(keys), shift(args))
end

local function mg_fbatch(keys, args)
  return fenced('mg_fbatch', 'FCALL mg_fbatch 3+N lease log epoch key1..keyN ltoken maxlen ' ..
    'token op1 value1 .. opN valueN', batch, keys, args)
end

local function mg_fepoch(keys, args)
  return fenced('mg_fepoch', 'FCALL mg_fepoch 2 lease epoch ltoken token', epoch, keys, args)
end

-- Plain SET of N keys (args: px_ms, then the N values).
local function set_plain(name, usage, keys, args)
  local n = #keys
  if n < 1 or #args ~= 1 + n then
    return redis.error_reply('ERR ' .. name .. ': usage: ' .. usage)
  end
  if n > BATCH_MAX then
    return redis.error_reply('ERR ' .. name .. ': at most ' .. BATCH_MAX .. ' keys per call')
  end
  local px = args[1]
  if px ~= '0' and check_ttl(px) == nil then
    return redis.error_reply('ERR ' .. name .. ': px_ms must be 0 or a positive integer')
  end
  if px == '0' then
    -- one MSET: a bulk load of a cluster nobody reads yet is many of these
    local kv = {}
    for i = 1, n do
      kv[2 * i - 1] = keys[i]
      kv[2 * i] = args[1 + i]
    end
    redis.call('MSET', unpack(kv))
    return n
  end
  for i = 1, n do
    redis.call('SET', keys[i], args[1 + i], 'PX', px)
  end
  return n
end

local function mg_fset(keys, args)
  return fenced('mg_fset', 'FCALL mg_fset 1+N lease key1..keyN ltoken px_ms value1..valueN',
    set_plain, keys, args)
end

-- Plain DEL of N keys (no arguments).
local function del_plain(name, usage, keys, args)
  if #keys < 1 or #args ~= 0 then
    return redis.error_reply('ERR ' .. name .. ': usage: ' .. usage)
  end
  if #keys > BATCH_MAX then
    return redis.error_reply('ERR ' .. name .. ': at most ' .. BATCH_MAX .. ' keys per call')
  end
  return redis.call('DEL', unpack(keys))
end

local function mg_fdel(keys, args)
  return fenced('mg_fdel', 'FCALL mg_fdel 1+N lease key1..keyN ltoken', del_plain, keys, args)
end

redis.register_function('mg_put', mg_put)
redis.register_function('mg_del', mg_del)
redis.register_function('mg_batch', mg_batch)
redis.register_function('mg_epoch', mg_epoch)
redis.register_function('mg_lease_acquire', mg_lease_acquire)
redis.register_function('mg_lease_renew', mg_lease_renew)
redis.register_function('mg_lease_release', mg_lease_release)
redis.register_function('mg_fbatch', mg_fbatch)
redis.register_function('mg_fset', mg_fset)
redis.register_function('mg_fdel', mg_fdel)
redis.register_function('mg_fepoch', mg_fepoch)
