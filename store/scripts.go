package store

import (
	"context"
	"crypto/sha1"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// The Redis store's Lua scripts. Each runs atomically in Redis (no other command interleaves),
// which is what makes a claim, an ack or a give-back all-or-nothing across the keys it
// touches. Every script gets the key prefix as ARGV[1] and builds its key names from it:
// the scripts touch keys they cannot declare in advance (a task's queue is read from its
// record), so the store needs a single Redis (or a primary with replicas), not Redis Cluster.
//
// Times are Redis's own (TIME, in milliseconds), so several brokers with skewed clocks agree
// on when a lease runs out.
//
// Fencing: an owner whose tasks were given back because its lease ran out (or because a new
// run of its owner id registered) is fenced: <p>fenced holds it (scored by when), and every
// script that writes on an owner's behalf (Hold, Claim, Renew, Ack, Requeue) refuses a fenced
// owner with a FENCED error, so a broker that lost its lease cannot touch tasks that are no
// longer its own, and learns it. Register starts a new run of an owner id (<owner>#<epoch>, the
// epoch counted in <p>epoch) after giving back what the previous run held.
//
// Two kinds of records hold an owner's tasks. A task stored by Hold (the broker's path for
// every task it accepts) is one field of the owner's hash <p>held:<owner>: id -> held record
// "<h>,<base>,<i>,<a>,<qlen>,<q><d>" (hold time in Redis ms; the claim sequence, as the
// sequence before the task's Hold call and the task's place in it from 1; attempts; the
// queue's length and name; then the task value), so that a hold is one field set and an ack one field
// deleted, not a key made, listed in a sorted set and deleted (each field and each key a
// command Redis runs, allocates for and propagates to its append-only file: the held hash
// costs Redis about half the CPU per task). A task taken by Claim, and every task held by a
// version before the held hash, is a task key <p>t:<id> (o = owner) listed in the owner's
// sorted set <p>own:<owner>; every script reads both kinds, and a give-back merges them in
// claim order. Tasks waiting in a queue are always task keys.

const luaCommon = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- want_type makes key k (a structure key: a queue, an owner's set, the owners, the fenced
-- runs) of type t or absent: a key of another type is set aside (renamed to <p>bad:<name>,
-- the name added to <p>bad), so that it blocks no write of anyone else.
local function want_type(p, k, t)
  local ty = redis.call('TYPE', k).ok
  if ty ~= 'none' and ty ~= t then
    local name = string.sub(k, #p + 1)
    redis.call('RENAME', k, p .. 'bad:' .. name)
    redis.call('SADD', p .. 'bad', name)
  end
end
local function fenced(p, owner)
  want_type(p, p .. 'fenced', 'zset')
  return redis.call('ZSCORE', p .. 'fenced', owner) ~= false
end
-- aside moves the key of task id, of the wrong type or damaged, out of the way: renamed to
-- <p>bad:<id>, its id added to <p>bad, so that it blocks nothing.
local function aside(p, id)
  redis.call('RENAME', p .. 't:' .. id, p .. 'bad:' .. id)
  redis.call('SADD', p .. 'bad', id)
end
-- task_fields reads fields of task id's hash; a key of another type is set aside and reads
-- as no task.
local function task_fields(p, id, ...)
  local v = redis.pcall('HMGET', p .. 't:' .. id, ...)
  if type(v) == 'table' and v.err then
    aside(p, id)
    return {}
  end
  return v
end
-- key_get reads idempotency key kk (<p>key:<name>); a key of another type is set aside
-- (renamed to <p>bad:key:<name>, added to <p>bad) and reads as unbound, so that it blocks
-- neither the holds nor the result writes of the batch it is in.
local function key_get(p, kk)
  local v = redis.pcall('GET', kk)
  if type(v) == 'table' and v.err then
    local name = string.sub(kk, #p + 1)
    redis.call('RENAME', kk, p .. 'bad:' .. name)
    redis.call('SADD', p .. 'bad', name)
    return false
  end
  return v
end
-- free_id reports whether no task id is stored (a key of another type is set aside).
local function free_id(p, id)
  local tk = p .. 't:' .. id
  if redis.call('EXISTS', tk) == 0 then
    return true
  end
  if redis.call('TYPE', tk).ok ~= 'hash' then
    aside(p, id)
    return true
  end
  return false
end
-- anchor is the value of the anchor field of every held hash (see luaHold).
local anchor = 'anchor: keeps this held hash in the hashtable encoding (a value over 64 bytes)'
-- parse_rec reads a held record (see above): its hold time (a string), claim sequence (the
-- group's base plus the task's place in it), attempts, queue and task value; nil when it is
-- damaged.
local function parse_rec(rec)
  local h, base, j, a, ql, pos = string.match(rec, '^(%d+),(%d+),(%d+),(%d+),(%d+),()')
  if not h then
    return nil
  end
  ql = tonumber(ql)
  return {h = h, seq = tonumber(base) + tonumber(j), a = tonumber(a), q = string.sub(rec, pos, pos + ql - 1), d = string.sub(rec, pos + ql)}
end
-- rec_aside sets a damaged held record of id aside: its bytes to <p>bad:<id>, its id added to
-- <p>bad.
local function rec_aside(p, id, rec)
  redis.call('SET', p .. 'bad:' .. id, rec)
  redis.call('SADD', p .. 'bad', id)
end
-- held_by returns the owner whose held hash has id, or nil (read only: a key of the wrong
-- type reads as not there; the writes that meet it set it aside).
local function held_by(p, id)
  local owners = redis.pcall('ZRANGE', p .. 'owners', 0, -1)
  if type(owners) ~= 'table' or owners.err then
    return nil
  end
  for _, o in ipairs(owners) do
    if redis.pcall('HEXISTS', p .. 'held:' .. o, id) == 1 then
      return o
    end
  end
  return nil
end
-- holds reports whether owner holds task id (either kind of record).
local function holds(p, owner, id)
  return redis.pcall('HEXISTS', p .. 'held:' .. owner, id) == 1 or task_fields(p, id, 'o')[1] == owner
end
-- in_store reports whether id is a task in the store (queued, claimed or held by anyone) or
-- has a result kept.
local function in_store(p, id)
  return redis.call('EXISTS', p .. 't:' .. id, p .. 'r:' .. id) > 0 or held_by(p, id) ~= nil
end
-- to_queue stores held record r of id as a task waiting in its queue (a task key without an
-- owner), with an attempt counted; a task key already there (damaged, or another task's: an
-- anomaly) is set aside first. The caller pushes id on the queue.
local function to_queue(p, id, r)
  local tk = p .. 't:' .. id
  if redis.call('EXISTS', tk) == 1 then
    aside(p, id)
  end
  redis.call('HSET', tk, 'd', r.d, 'q', r.q, 'a', r.a + 1, 'h', r.h)
end
-- push_front puts id at the front of queue q; checked (queue -> true) holds the queues whose
-- key type this script already checked, so that a give-back of many tasks checks each once.
local function push_front(p, q, id, checked)
  if not checked[q] then
    checked[q] = true
    want_type(p, p .. 'q:' .. q, 'list')
  end
  redis.call('LPUSH', p .. 'q:' .. q, id)
end
-- batched runs cmd (with key first when key is not nil) over the items of list, in calls of at
-- most 1,000 items (unpack is bounded by Lua's stack), and replies the sum of the integer
-- replies. One variadic command per batch costs Redis far less than one command per task.
local function batched(cmd, key, list)
  local n = 0
  for s = 1, #list, 1000 do
    local e = math.min(s + 999, #list)
    if key then
      n = n + redis.call(cmd, key, unpack(list, s, e))
    else
      n = n + redis.call(cmd, unpack(list, s, e))
    end
  end
  return n
end
-- give_back puts every task that owner holds (both kinds of records) back at the front of
-- its queue, in claim order, with an attempt counted, and forgets owner.
local function give_back(p, owner)
  local ok = p .. 'own:' .. owner
  local hk = p .. 'held:' .. owner
  want_type(p, ok, 'zset')
  want_type(p, hk, 'hash')
  want_type(p, p .. 'owners', 'zset')
  -- One order for both kinds: the claim sequence (unique, shared by Claim and Hold).
  local seqs, byseq = {}, {}
  local zs = redis.call('ZRANGE', ok, 0, -1, 'WITHSCORES')
  for i = 1, #zs, 2 do
    local s = tonumber(zs[i + 1])
    seqs[#seqs + 1] = s
    byseq[s] = {zs[i], false}
  end
  local hs = redis.call('HGETALL', hk)
  for i = 1, #hs, 2 do
    local r = hs[i] ~= '' and parse_rec(hs[i + 1]) -- '' is the anchor field, no task
    if hs[i] == '' then
      -- nothing to give back
    elseif r and not byseq[r.seq] then
      seqs[#seqs + 1] = r.seq
      byseq[r.seq] = {hs[i], r}
    else
      rec_aside(p, hs[i], hs[i + 1])
    end
  end
  if #hs > 0 then
    table.sort(seqs)
  end
  local n = 0
  local checked = {}
  for i = #seqs, 1, -1 do
    local id, r = byseq[seqs[i]][1], byseq[seqs[i]][2]
    local q
    if r then
      q = r.q
      to_queue(p, id, r)
    else
      local tk = p .. 't:' .. id
      q = task_fields(p, id, 'q')[1]
      if q then
        redis.call('HINCRBY', tk, 'a', 1)
        redis.call('HDEL', tk, 'o', 'r')
      end
    end
    if q then
      push_front(p, q, id, checked)
      n = n + 1
    end
  end
  redis.call('DEL', ok, hk, p .. 'run:' .. owner)
  redis.call('ZREM', p .. 'owners', owner)
  if #hs > 0 then
    redis.call('SREM', p .. 'holders', owner)
  end
  return n
end
`

// luaPut: ARGV = prefix, then (id, value, ttl_ms, key, owner) per result. Each result is one
// key with a TTL; a PUBLISH on its done channel wakes the Waits of any broker (a publish with
// no subscriber costs Redis a hash lookup). A non-empty idempotency key is bound to the id for
// the result's TTL, unless it is bound to another id still held, queued or with a result. A
// result with an owner is written only while that owner holds the task (fencing: a broker
// that lost the task writes no result for it). Replies how many results were written.
const luaPut = luaCommon + `
local p = ARGV[1]
local n = 0
for i = 2, #ARGV, 5 do
  local id = ARGV[i]
  local owner = ARGV[i + 4]
  if owner == '' or holds(p, owner, id) then
  n = n + 1
  redis.call('SET', p .. 'r:' .. id, ARGV[i + 1], 'PX', ARGV[i + 2])
  redis.call('PUBLISH', p .. 'done:' .. id, '')
  local key = ARGV[i + 3]
  if key ~= '' then
    local kk = p .. 'key:' .. key
    local cur = key_get(p, kk)
    if not cur or cur == id or not in_store(p, cur) then
      redis.call('SET', kk, id, 'PX', ARGV[i + 2])
    end
  end
  end
end
return n
`

// luaClaim: ARGV = prefix, queue, owner, n, lease_ms, token, token_ttl_ms. Gives back the
// tasks of up to 16 owners whose lease ran out (fencing them), refuses a fenced owner, renews
// owner's lease, pops up to n ids and moves each task in flight (its owner field set, its id in
// the owner's zset scored by a global sequence, so give-back keeps claim order). Replies id,
// value, attempts and age (ms since its hold, on Redis's clock) per task. A non-empty token makes the claim idempotent: its ids are kept
// under the token for token_ttl_ms, and a claim with the same token replies them again (those
// the owner still holds) instead of taking more, so a claim whose reply was lost (a timeout)
// is applied by its retry.
const luaClaim = luaCommon + `
local p, queue, owner, n, lease = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local token = ARGV[6]
local now = now_ms()
want_type(p, p .. 'owners', 'zset')
local dead = redis.call('ZRANGEBYSCORE', p .. 'owners', '-inf', now, 'LIMIT', 0, 16)
for _, o in ipairs(dead) do
  if give_back(p, o) > 0 then
    redis.call('ZADD', p .. 'fenced', now, o) -- its tasks are others' now
  end
end
if fenced(p, owner) then
  return redis.error_reply('FENCED owner ' .. owner .. ' lost its lease')
end
redis.call('ZADD', p .. 'owners', now + lease, owner)
local out = {}
local ck = p .. 'claim:' .. owner .. ':' .. token
if token ~= '' then
  want_type(p, ck, 'list')
end
if token ~= '' and redis.call('EXISTS', ck) == 1 then
  -- a retry of a claim that ran: its tasks again, those the owner still holds
  for _, id in ipairs(redis.call('LRANGE', ck, 0, -1)) do
    local v = task_fields(p, id, 'd', 'a', 'o', 'h')
    if v[1] and v[3] == owner then
      out[#out + 1] = id
      out[#out + 1] = v[1]
      out[#out + 1] = v[2]
      out[#out + 1] = now - tonumber(v[4] or now)
    end
  end
  return out
end
want_type(p, p .. 'q:' .. queue, 'list')
local ids = redis.call('LPOP', p .. 'q:' .. queue, n)
if not ids then
  return out
end
if token ~= '' then
  redis.call('RPUSH', ck, unpack(ids))
  redis.call('PEXPIRE', ck, ARGV[7])
end
local base = redis.call('INCRBY', p .. 'seq', #ids) - #ids
local ok = p .. 'own:' .. owner
want_type(p, ok, 'zset')
for i, id in ipairs(ids) do
  local tk = p .. 't:' .. id
  local v = task_fields(p, id, 'd', 'a', 'h')
  if v[1] then
    redis.call('HSET', tk, 'o', owner)
    redis.call('ZADD', ok, base + i, id)
    out[#out + 1] = id
    out[#out + 1] = v[1]
    out[#out + 1] = v[2]
    out[#out + 1] = now - tonumber(v[3] or now)
  end
end
return out
`

// luaHold: ARGV = prefix, lease_ms, ntasks, ngroups, then per group (one Hold call) its owner,
// its task count k, its stride w and per task (id, tail), followed by (key, key_ttl_ms) when w
// is 4 (a group with a keyed task; 2 otherwise); tail is the end of the task's held record,
// "<i>,<a>,<qlen>,<q><d>" (i its place in the group, from 1), built by the broker. Each task whose id is not in use, and whose
// idempotency key (if any) is not bound to another id, is stored in flight as a field of the
// owner's held hash: its record, the hold time (Redis TIME) and the global claim sequence
// before the group (one INCRBY for the whole batch, the task's own i past it; skipped ids
// leave gaps, which keep the order) put before tail;
// its key is bound to its id for key_ttl_ms. A key bound to a task that is gone with no result
// kept (acked after a failed write, say) is stale and taken over. Every owner in the batch
// has its lease renewed.
// An id the store has as another task (held by another owner, queued, or with a result: an id
// collision) is not stored either, and left alone; an id owner holds already is a resend of
// the same task (a write that got no answer and is sent again) and a no-op.
// Replies one string per task: the id its key is bound to when that stopped it, else ""; the
// integer 1 for a task whose id is another task's; or the integer 0 for each task of a fenced
// owner (nothing of that group stored). When every task was stored it replies an empty array
// instead (the common case, so Redis builds and the broker reads no per-task reply).
const luaHold = luaCommon + `
local p, lease, total, ngroups = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local pre = string.format('%d', now) .. ',' -- formatted once, not per task
local seq = redis.call('INCRBY', p .. 'seq', total) - total
local pt, pr = p .. 't:', p .. 'r:'
local renewed = {}
local out -- the reply per task, made once a task is not stored
local done = 0 -- tasks gone through
local seen = {} -- ids stored by this script: their owner
local owners -- the owners, read once: whose held hashes an id may be in
local holders = {} -- owners added to <p>holders by this script
want_type(p, p .. 'owners', 'zset')
want_type(p, p .. 'holders', 'set')
local i = 5
for g = 1, ngroups do
  local owner, k, w = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
  if fenced(p, owner) then
    if not out then
      out = {}
      for x = 1, done do
        out[x] = ''
      end
    end
    for j = 1, k do
      out[#out + 1] = 0 -- not stored: the owner is fenced
    end
    done = done + k
    seq = seq + k
  else
    if not renewed[owner] then
      renewed[owner] = true
      redis.call('ZADD', p .. 'owners', now + lease, owner)
    end
    local hk = p .. 'held:' .. owner
    want_type(p, hk, 'hash')
    -- Ids in use, for the whole group at once: one EXISTS over its task and result keys, and
    -- one HMGET per owner's held hash (who holds each id).
    local ids, keys = {}, {}
    for j = 0, k - 1 do
      local id = ARGV[i + w * j]
      ids[j + 1] = id
      keys[2 * j + 1] = pt .. id
      keys[2 * j + 2] = pr .. id
    end
    local inuse = batched('EXISTS', nil, keys) > 0
    if not owners then
      owners = redis.call('ZRANGE', p .. 'owners', 0, -1)
    end
    local holder = {}
    for _, o in ipairs(owners) do
      local ok = p .. 'held:' .. o
      for s = 1, k, 1000 do
        local v = redis.pcall('HMGET', ok, unpack(ids, s, math.min(s + 999, k)))
        if v.err then
          want_type(p, ok, 'hash')
          break
        end
        for j = 1, #v do
          if v[j] then
            holder[ids[s + j - 1]] = o
          end
        end
      end
    end
    -- Per task only what cannot be done per group: no number formatted (the group's part of
    -- the claim sequence is in gpre, the task's place in the group in its tail), and a reply
    -- only once a task is not stored.
    local gpre = pre .. string.format('%d', seq) .. ','
    local keyed = w == 4
    local hargs = {}
    for j = 0, k - 1 do
      local a = i + w * j
      local id = ids[j + 1]
      local bound = ''
      local fresh = true
      local by = seen[id] or holder[id]
      if by then
        fresh = false -- a resend, or another task's id
        if by ~= owner then
          bound = 1
        end
      elseif inuse then
        local tk, rk = keys[2 * j + 1], keys[2 * j + 2]
        if redis.call('EXISTS', tk, rk) == 0 then
          -- a new id
        elseif not free_id(p, id) then
          fresh = false
          if task_fields(p, id, 'o')[1] ~= owner then
            bound = 1 -- another task's id
          end
        elseif redis.call('EXISTS', rk) == 1 then
          fresh = false
          bound = 1 -- a finished task's id
        end -- else a key of another type, set aside: a new id
      end
      if fresh then
        local key = keyed and ARGV[a + 2] or ''
        if key ~= '' then
          local kk = p .. 'key:' .. key
          local cur = key_get(p, kk)
          if cur and cur ~= id and (seen[cur] or in_store(p, cur)) then
            bound = cur
          else
            redis.call('SET', kk, id, 'PX', ARGV[a + 3])
          end
        end
        if bound == '' then
          seen[id] = owner
          hargs[#hargs + 1] = id
          hargs[#hargs + 1] = gpre .. ARGV[a + 1]
        end
      end
      if bound ~= '' and not out then
        out = {}
        for x = 1, done do
          out[x] = ''
        end
      end
      if out then
        out[#out + 1] = bound
      end
      done = done + 1
    end
    seq = seq + k
    if #hargs > 0 then
      -- The anchor field ("", no task's id) keeps the hash in Redis's hashtable encoding:
      -- its value is longer than hash-max-listpack-value (64 by default), and an ack never
      -- empties (deletes) the hash. A small hash in the listpack encoding costs a scan of the
      -- whole hash per field set, read or deleted.
      redis.call('HSETNX', hk, '', anchor)
      batched('HSET', hk, hargs)
      if not holders[owner] then
        holders[owner] = true
        redis.call('SADD', p .. 'holders', owner)
      end
    end
  end
  i = i + w * k
end
return out or {}
`

// luaAck: ARGV = prefix, ngroups, then per group (one Ack call) its owner, its id count k
// and the ids. Forgets each task owner holds (either kind of record), or that waits in a queue
// (LREM: O(queue length), for the rare ack of a queued task); a task another owner holds is
// left alone. A fenced owner's group is refused whole. Replies 1 per group, 0 when refused.
const luaAck = luaCommon + `
local p, ngroups = ARGV[1], tonumber(ARGV[2])
local out = {}
local i = 3
for g = 1, ngroups do
  local owner, k = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  if fenced(p, owner) then
    out[g] = 0
  else
    out[g] = 1
    -- One HDEL of every id from the owner's held hash: when it removes them all (the common
    -- case) that is the whole ack. Otherwise the rest are claimed tasks (one ZREM from the
    -- owner's set, one DEL of their keys when it removed them all) or are read one by one.
    local hk = p .. 'held:' .. owner
    want_type(p, hk, 'hash')
    local last = i + k - 1
    local n = 0
    for s = i, last, 1000 do
      n = n + redis.call('HDEL', hk, unpack(ARGV, s, math.min(s + 999, last)))
    end
    local rk = p .. 'run:' .. owner
    if redis.call('EXISTS', rk) == 1 then
      want_type(p, rk, 'set')
      for s = i, last, 1000 do
        redis.call('SREM', rk, unpack(ARGV, s, math.min(s + 999, last)))
      end
    end
    if n < k then
      local ok = p .. 'own:' .. owner
      want_type(p, ok, 'zset')
      local owned = 0
      if n == 0 then
        for s = i, last, 1000 do
          owned = owned + redis.call('ZREM', ok, unpack(ARGV, s, math.min(s + 999, last)))
        end
      end
      local dels = {}
      if owned == k then
        -- each was the owner's (an id is in own:<owner> exactly while its record's o is owner)
        for j = i, last do
          dels[#dels + 1] = p .. 't:' .. ARGV[j]
        end
      else
        for j = i, last do
          local id = ARGV[j]
          local tk = p .. 't:' .. id
          local v = task_fields(p, id, 'o', 'q')
          if v[1] == owner then
            redis.call('ZREM', ok, id)
            dels[#dels + 1] = tk
          elseif not v[1] and v[2] then
            want_type(p, p .. 'q:' .. v[2], 'list')
            redis.call('LREM', p .. 'q:' .. v[2], 1, id)
            redis.call('DEL', tk)
          end
        end
      end
      batched('DEL', nil, dels)
    end
  end
  i = i + k
end
return out
`

// luaRequeue: ARGV = prefix, owner, ids... Gives tasks owner holds back to the front of their
// queues, last id first so that ids[0] ends up at the front, each with an attempt counted. A
// fenced owner is refused.
const luaRequeue = luaCommon + `
local p, owner = ARGV[1], ARGV[2]
if fenced(p, owner) then
  return redis.error_reply('FENCED owner ' .. owner .. ' lost its lease')
end
local n = 0
local hk, rk = p .. 'held:' .. owner, p .. 'run:' .. owner
want_type(p, p .. 'own:' .. owner, 'zset')
want_type(p, hk, 'hash')
want_type(p, rk, 'set')
local checked = {}
for i = #ARGV, 3, -1 do
  local id = ARGV[i]
  local q
  local rec = redis.call('HGET', hk, id)
  if rec then
    redis.call('HDEL', hk, id)
    redis.call('SREM', rk, id)
    local r = parse_rec(rec)
    if r then
      q = r.q
      to_queue(p, id, r)
    else
      rec_aside(p, id, rec)
    end
  else
    local tk = p .. 't:' .. id
    local v = task_fields(p, id, 'o', 'q')
    if v[1] == owner and v[2] then
      q = v[2]
      redis.call('ZREM', p .. 'own:' .. v[1], id)
      redis.call('HDEL', tk, 'o', 'r')
      redis.call('HINCRBY', tk, 'a', 1)
    end
  end
  if q then
    push_front(p, q, id, checked)
    n = n + 1
  end
end
return n
`

// luaSetRunning: ARGV = prefix, owner, running ("1" or "0"), ids... Marks each task that
// owner holds as running, or clears the mark: a held task's id in the owner's set
// <p>run:<owner>, a claimed task's field r (which goes with the owner field when the task is
// given back); the set goes with the owner's held hash.
const luaSetRunning = luaCommon + `
local p, owner, running = ARGV[1], ARGV[2], ARGV[3] == '1'
local hk, rk = p .. 'held:' .. owner, p .. 'run:' .. owner
want_type(p, hk, 'hash')
want_type(p, rk, 'set')
local n = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', hk, id) == 1 then
    if running then
      redis.call('SADD', rk, id)
    else
      redis.call('SREM', rk, id)
    end
    n = n + 1
  elseif task_fields(p, id, 'o')[1] == owner then
    local tk = p .. 't:' .. id
    if running then
      redis.call('HSET', tk, 'r', '1')
    else
      redis.call('HDEL', tk, 'r')
    end
    n = n + 1
  end
end
return n
`

// luaLocate: ARGV = prefix, id. Replies where task id is ("none", "queued", "held" or
// "running") and its owner ("" when none): a task key (queued, or claimed: o, r), else the
// held hash that has it. Reads only.
const luaLocate = luaCommon + `
local p, id = ARGV[1], ARGV[2]
local v = redis.pcall('HMGET', p .. 't:' .. id, 'o', 'q', 'r')
if type(v) == 'table' and not v.err then
  if v[1] then
    return {v[3] and 'running' or 'held', v[1]}
  end
  if v[2] then
    return {'queued', ''}
  end
end
local o = held_by(p, id)
if o then
  if redis.pcall('SISMEMBER', p .. 'run:' .. o, id) == 1 then
    return {'running', o}
  end
  return {'held', o}
end
return {'none', ''}
`

// luaRenew: ARGV = prefix, owner, lease_ms. A fenced owner is refused.
const luaRenew = luaCommon + `
if fenced(ARGV[1], ARGV[2]) then
  return redis.error_reply('FENCED owner ' .. ARGV[2] .. ' lost its lease')
end
want_type(ARGV[1], ARGV[1] .. 'owners', 'zset')
redis.call('ZADD', ARGV[1] .. 'owners', now_ms() + tonumber(ARGV[3]), ARGV[2])
return 1
`

// luaRegister: ARGV = prefix, owner, lease_ms, force. Starts a new run of owner id owner:
// refused (OWNERLIVE, with the ms left) while its current run's lease is live unless force is
// "1"; otherwise gives back
// what the current run held (fencing it) and what tasks held under the bare owner id (a run
// of a version without runs) held, counts the next epoch and takes the lease for the new run
// <owner>#<epoch>. Fenced runs older than a day are forgotten. A held hash whose owner has no
// lease (left by the give-back of a version before held hashes, which knew only task keys;
// <p>holders lists the owners that have one) goes back too. Replies the run and how many
// tasks went back.
const luaRegister = luaCommon + `
local p, owner, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
want_type(p, p .. 'epoch', 'hash')
want_type(p, p .. 'owners', 'zset')
want_type(p, p .. 'fenced', 'zset')
local e = redis.call('HGET', p .. 'epoch', owner)
local n = 0
if e then
  local prev = owner .. '#' .. e
  local until_ms = redis.call('ZSCORE', p .. 'owners', prev)
  if until_ms and tonumber(until_ms) > now and ARGV[4] ~= '1' then
    return redis.error_reply('OWNERLIVE ' .. (tonumber(until_ms) - now))
  end
  n = give_back(p, prev)
  redis.call('ZADD', p .. 'fenced', now, prev)
end
n = n + give_back(p, owner)
-- A version before the held hash gives back only task keys: a held hash it left behind (its
-- owner no longer has a lease) goes back now.
want_type(p, p .. 'holders', 'set')
for _, o in ipairs(redis.call('SMEMBERS', p .. 'holders')) do
  if redis.call('EXISTS', p .. 'held:' .. o) == 0 then
    redis.call('SREM', p .. 'holders', o)
  elseif not redis.call('ZSCORE', p .. 'owners', o) then
    n = n + give_back(p, o)
  end
end
redis.call('ZREMRANGEBYSCORE', p .. 'fenced', '-inf', now - 86400000)
local run = owner .. '#' .. redis.call('HINCRBY', p .. 'epoch', owner, 1)
redis.call('ZADD', p .. 'owners', now + lease, run)
return {run, n}
`

// luaQuarantine: ARGV = prefix, owner, id. Moves a damaged task record aside: out of owner's
// set, its hash renamed to <p>bad:<id>, the id added to <p>bad (a set, for operators).
const luaQuarantine = luaCommon + `
local p, owner, id = ARGV[1], ARGV[2], ARGV[3]
want_type(p, p .. 'own:' .. owner, 'zset')
redis.call('ZREM', p .. 'own:' .. owner, id)
local tk = p .. 't:' .. id
if redis.call('EXISTS', tk) == 1 then
  redis.call('RENAME', tk, p .. 'bad:' .. id)
end
redis.call('SADD', p .. 'bad', id)
return 1
`

// luaRecover: ARGV = prefix, owner. Replies how many tasks went back.
const luaRecover = luaCommon + `
return give_back(ARGV[1], ARGV[2])
`

// script is a Lua script run with EVALSHA, falling back to EVAL when Redis does not know it
// (after a restart or SCRIPT FLUSH), which also loads it for the next EVALSHA.
type script struct {
	src string
	sha string
}

func newScript(src string) *script {
	h := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(h[:])}
}

var (
	scriptPut        = newScript(luaPut)
	scriptClaim      = newScript(luaClaim)
	scriptHold       = newScript(luaHold)
	scriptAck        = newScript(luaAck)
	scriptRequeue    = newScript(luaRequeue)
	scriptRenew      = newScript(luaRenew)
	scriptRunning    = newScript(luaSetRunning)
	scriptRecover    = newScript(luaRecover)
	scriptRegister   = newScript(luaRegister)
	scriptQuarantine = newScript(luaQuarantine)
	scriptLocate     = newScript(luaLocate)
)

// evalMulti runs several scripts in one pipeline (one round trip when Redis knows them all)
// and reruns with EVAL, in a second pipeline, the ones Redis answered NOSCRIPT. A script that
// failed NOSCRIPT did not run, so the rerun cannot apply anything twice.
func evalMulti(ctx context.Context, c rueidis.Client, scripts []*script, args [][]string, buf *rueidis.Commands) []rueidis.RedisResult {
	cmds := (*buf)[:0]
	defer func() { clear(cmds); *buf = cmds[:0] }()
	for i, s := range scripts {
		cmds = append(cmds, c.B().Evalsha().Sha1(s.sha).Numkeys(0).Arg(args[i]...).Build())
	}
	res := c.DoMulti(ctx, cmds...)
	var redo []int
	for i := range res {
		if err, ok := rueidis.IsRedisErr(res[i].Error()); ok && err.IsNoScript() {
			redo = append(redo, i)
		}
	}
	if len(redo) == 0 {
		return res
	}
	cmds = cmds[:0]
	for _, i := range redo {
		cmds = append(cmds, c.B().Eval().Script(scripts[i].src).Numkeys(0).Arg(args[i]...).Build())
	}
	for j, r := range c.DoMulti(ctx, cmds...) {
		res[redo[j]] = r
	}
	return res
}

// eval runs one script (EVALSHA, EVAL on NOSCRIPT).
func eval(ctx context.Context, c rueidis.Client, s *script, args ...string) rueidis.RedisResult {
	r := c.Do(ctx, c.B().Evalsha().Sha1(s.sha).Numkeys(0).Arg(args...).Build())
	if err, ok := rueidis.IsRedisErr(r.Error()); ok && err.IsNoScript() {
		r = c.Do(ctx, c.B().Eval().Script(s.src).Numkeys(0).Arg(args...).Build())
	}
	return r
}
