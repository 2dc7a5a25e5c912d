package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// The dead-letter archive of a durable broker (docs/protocol.md, "The archive"): the tasks
// that ended FAILURE, EXPIRED or REVOKED, kept with what it takes to run them again, shared by
// every broker on the store and bounded by count, bytes and age (ArchiveLimits), oldest out
// first. Keys (see the package doc):
//
//	<p>dead       hash    id -> the archived task's value (see appendDead)
//	<p>deadz      zset    ids in archive order, scored by position: archive time (Redis TIME,
//	                      ms) * 4096, made unique by counting up within a millisecond
//	<p>deadbytes  string  the sum of the ids' and values' lengths (ArchiveLimits.MaxBytes)
//	<p>deadlast   string  the last position handed out
//
// A position is a list cursor: stable while its entry lives, and later entries always have
// higher positions, so paging by position neither skips nor repeats an entry that stays.

// Dead is an archived task as the store keeps it. The store reads only ID and Queue; the rest is
// carried byte for byte.
type Dead struct {
	// ID is the task's id.
	ID string
	// Queue is the store queue it runs in again when it is revived (Task.Queue).
	Queue string
	// Method, Params and Meta are those of the task it becomes when it is revived
	// (Task.Method, Task.Params, Task.Meta).
	Method string
	Params []byte
	Meta   []byte
	// Timeout is its deadline when it is revived, counted from the revival; 0 for none.
	Timeout time.Duration
	// Record is the broker's record of it (listed as it is).
	Record []byte
	// Pos is set by ListDead: the entry's position (a cursor for the next page).
	Pos uint64
	// At is set by ListDead: when it was archived, on the store's clock.
	At time.Time
}

// ArchiveLimits bound the archive: past any of them the oldest entries go (by count and
// bytes the newest entry always stays; by age none does).
type ArchiveLimits struct {
	Max      int           // entries
	MaxBytes int64         // the sum of their ids' and values' lengths
	TTL      time.Duration // age
}

func (l ArchiveLimits) args(p string) []string {
	return []string{p, strconv.Itoa(max(l.Max, 1)), strconv.FormatInt(max(l.MaxBytes, 1), 10), strconv.FormatInt(max(l.TTL.Milliseconds(), 1), 10)}
}

const deadVersion = 1

// appendDead appends d's value: 0x01 timeout(uvarint ms) queue method params meta record.
func appendDead(dst []byte, d *Dead) []byte {
	dst = append(dst, deadVersion)
	dst = binary.AppendUvarint(dst, uint64(max(d.Timeout.Milliseconds(), 0)))
	dst = appendField(dst, d.Queue)
	dst = appendField(dst, d.Method)
	dst = appendBytesField(dst, d.Params)
	dst = appendBytesField(dst, d.Meta)
	return appendBytesField(dst, d.Record)
}

// decodeDead decodes a value into d (id aside); its byte fields are copies.
func decodeDead(v []byte, d *Dead) error {
	dec := decoder{b: v}
	dec.header(deadVersion, "archived task")
	ms := dec.uvarint("timeout")
	queue := dec.bytes("queue")
	method := dec.bytes("method")
	params := dec.bytes("params")
	meta := dec.bytes("meta")
	rec := dec.bytes("record")
	dec.end("archived task")
	if dec.err != nil {
		return dec.err
	}
	d.Timeout = time.Duration(min(ms, math.MaxInt64/uint64(time.Millisecond))) * time.Millisecond
	d.Queue, d.Method = string(queue), string(method)
	d.Params = cloneOrNil(params)
	d.Meta = cloneOrNil(meta)
	d.Record = cloneOrNil(rec)
	return nil
}

func cloneOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// Archive keeps dead (replacing an entry of the same id, which moves to the back), then drops
// the oldest entries past lim, in one step.
func (r *Redis) Archive(ctx context.Context, lim ArchiveLimits, dead ...Dead) error {
	if err := r.closedErr(); err != nil {
		return err
	}
	if len(dead) == 0 {
		return nil
	}
	args := lim.args(r.o.Prefix)
	var buf []byte
	for i := range dead {
		d := &dead[i]
		if d.ID == "" || d.Queue == "" {
			return fmt.Errorf("%w: archived task with an empty id or queue", ErrInvalid)
		}
		buf = appendDead(buf[:0], d)
		args = append(args, d.ID, string(buf))
	}
	if err := eval(ctx, r.c, scriptArchive, args...).Error(); err != nil {
		return fmt.Errorf("store: archive: %w", err)
	}
	return nil
}

// ListDead appends to dst up to n archived tasks after position from (0: from the start), oldest
// first or newest first, and returns it; an entry older than lim.TTL is dropped first (with
// those past lim's other bounds), never listed.
func (r *Redis) ListDead(ctx context.Context, lim ArchiveLimits, from uint64, newest bool, n int, dst []Dead) ([]Dead, error) {
	if err := r.closedErr(); err != nil {
		return dst, err
	}
	if n <= 0 {
		return dst, fmt.Errorf("%w: list count %d", ErrInvalid, n)
	}
	dir := "0"
	if newest {
		dir = "1"
	}
	args := append(lim.args(r.o.Prefix), strconv.FormatUint(from, 10), dir, strconv.Itoa(n))
	v, err := eval(ctx, r.c, scriptListDead, args...).ToArray()
	if err != nil {
		return dst, fmt.Errorf("store: list archive: %w", err)
	}
	if len(v)%3 != 0 {
		return dst, fmt.Errorf("%w: archive list reply of %d items", ErrCorrupt, len(v))
	}
	for i := 0; i < len(v); i += 3 {
		id, err1 := v[i].ToString()
		pos, err2 := v[i+1].ToString()
		val, err3 := v[i+2].ToString()
		if err1 != nil || err2 != nil || err3 != nil {
			return dst, fmt.Errorf("%w: archive list reply", ErrCorrupt)
		}
		d := Dead{ID: id}
		f, err := strconv.ParseFloat(pos, 64)
		if err != nil || f < 0 {
			return dst, fmt.Errorf("%w: archive position %q", ErrCorrupt, pos)
		}
		d.Pos = uint64(f)
		if err := decodeDead([]byte(val), &d); err != nil {
			return dst, fmt.Errorf("archived task %q: %w", id, err)
		}
		d.At = time.UnixMilli(int64(d.Pos >> 12))
		dst = append(dst, d)
	}
	return dst, nil
}

// Revive makes the archived tasks of ids queued tasks again, at the back of their queues, with
// no attempts counted and their results forgotten (a task's id names one run at a time), in
// one step: any broker's Claim takes them. An id not in the archive, or that the store holds
// as a task, is skipped. Returns the tasks revived.
func (r *Redis) Revive(ctx context.Context, ids ...string) ([]Dead, error) {
	if err := r.closedErr(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := r.c.Do(ctx, r.c.B().Hmget().Key(r.o.Prefix+"dead").Field(ids...).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("store: read archived tasks: %w", err)
	}
	now := time.Now()
	args := []string{r.o.Prefix}
	var dead []Dead
	for i, v := range vals {
		s, err := v.ToString()
		if err != nil {
			continue // not archived
		}
		d := Dead{ID: ids[i]}
		if err := decodeDead([]byte(s), &d); err != nil {
			return nil, fmt.Errorf("archived task %q: %w", ids[i], err)
		}
		t := Task{ID: d.ID, Queue: d.Queue, Method: d.Method, Params: d.Params, Meta: d.Meta}
		if d.Timeout > 0 {
			t.Deadline = now.Add(d.Timeout)
		}
		args = append(args, d.ID, d.Queue, string(appendTask(nil, &t, now)))
		dead = append(dead, d)
	}
	if len(dead) == 0 {
		return nil, nil
	}
	got, err := eval(ctx, r.c, scriptRevive, args...).ToArray()
	if err != nil {
		return nil, fmt.Errorf("store: revive archived tasks: %w", err)
	}
	if len(got) != len(dead) {
		return nil, fmt.Errorf("%w: revive reply of %d items for %d tasks", ErrCorrupt, len(got), len(dead))
	}
	out := dead[:0]
	for i, g := range got {
		if ok, _ := g.AsInt64(); ok == 1 {
			out = append(out, dead[i])
		}
	}
	return out, nil
}

// GetDead reads the archived task id into d (its Pos and At not set) and reports whether it is
// archived.
func (r *Redis) GetDead(ctx context.Context, id string, d *Dead) (bool, error) {
	if err := r.closedErr(); err != nil {
		return false, err
	}
	v, err := r.c.Do(ctx, r.c.B().Hget().Key(r.o.Prefix+"dead").Field(id).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read archived task: %w", err)
	}
	*d = Dead{ID: id}
	if err := decodeDead(v, d); err != nil {
		return false, fmt.Errorf("archived task %q: %w", id, err)
	}
	return true, nil
}

// DeleteDead forgets the archived tasks of ids and returns how many there were.
func (r *Redis) DeleteDead(ctx context.Context, ids ...string) (int, error) {
	if err := r.closedErr(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	n, err := eval(ctx, r.c, scriptDeleteDead, append([]string{r.o.Prefix}, ids...)...).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("store: delete archived tasks: %w", err)
	}
	return int(n), nil
}

// luaDeadCommon: the archive's helpers. drop forgets entry id; trim drops the oldest entries
// past the bounds (max entries, maxb bytes: the newest stays; ttl ms: none stays).
const luaDeadCommon = luaCommon + `
local function dead_keys(p)
  return p .. 'dead', p .. 'deadz', p .. 'deadbytes'
end
local function dead_drop(p, id)
  local h, z, bk = dead_keys(p)
  local n = redis.call('HSTRLEN', h, id)
  if redis.call('HDEL', h, id) == 1 then
    redis.call('DECRBY', bk, n + #id)
  end
  redis.call('ZREM', z, id)
end
local function dead_trim(p, maxn, maxb, ttl, now)
  local h, z, bk = dead_keys(p)
  local cut = (now - ttl) * 4096
  while true do
    local f = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    if #f == 0 then
      return
    end
    local n = redis.call('ZCARD', z)
    local b = tonumber(redis.call('GET', bk) or '0')
    if not (tonumber(f[2]) < cut or (n > 1 and (n > maxn or b > maxb))) then
      return
    end
    dead_drop(p, f[1])
  end
end
`

// luaArchive: ARGV = prefix, max, max_bytes, ttl_ms, then (id, value) per task.
const luaArchive = luaDeadCommon + `
local p = ARGV[1]
local h, z, bk = dead_keys(p)
local lk = p .. 'deadlast'
local now = now_ms()
local last = tonumber(redis.call('GET', lk) or '0')
for i = 5, #ARGV, 2 do
  local id, v = ARGV[i], ARGV[i + 1]
  dead_drop(p, id)
  last = math.max(now * 4096, last + 1)
  redis.call('HSET', h, id, v)
  redis.call('ZADD', z, string.format('%.0f', last), id)
  redis.call('INCRBY', bk, #v + #id)
end
redis.call('SET', lk, string.format('%.0f', last))
dead_trim(p, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), now)
return 1
`

// luaListDead: ARGV = prefix, max, max_bytes, ttl_ms, from (position, 0 for the start), newest
// (0 or 1), n. Trims, then replies (id, position, value) per entry after from.
const luaListDead = luaDeadCommon + `
local p = ARGV[1]
local h, z = dead_keys(p)
dead_trim(p, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), now_ms())
local from, n = ARGV[5], tonumber(ARGV[7])
local r
if ARGV[6] == '1' then
  local top = '+inf'
  if from ~= '0' then
    top = '(' .. from
  end
  r = redis.call('ZREVRANGEBYSCORE', z, top, '-inf', 'WITHSCORES', 'LIMIT', 0, n)
else
  r = redis.call('ZRANGEBYSCORE', z, '(' .. from, '+inf', 'WITHSCORES', 'LIMIT', 0, n)
end
local out = {}
for i = 1, #r, 2 do
  local v = redis.call('HGET', h, r[i])
  if v then
    out[#out + 1] = r[i]
    out[#out + 1] = string.format('%.0f', tonumber(r[i + 1]))
    out[#out + 1] = v
  end
end
return out
`

// luaRevive: ARGV = prefix, then (id, queue, task value) per task. Each id still archived and
// not a task in the store leaves the archive, its result is deleted, and it is stored as a
// task waiting at the back of its queue with no attempts counted. Replies 1 per task revived,
// 0 per task skipped.
const luaRevive = luaDeadCommon + `
local p = ARGV[1]
local h = dead_keys(p)
local now = now_ms()
local out = {}
for i = 2, #ARGV, 3 do
  local id, q = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', h, id) == 1 and free_id(p, id) and not held_by(p, id) then
    dead_drop(p, id)
    redis.call('DEL', p .. 'r:' .. id)
    redis.call('HSET', p .. 't:' .. id, 'd', ARGV[i + 2], 'q', q, 'a', 0, 'h', now)
    want_type(p, p .. 'q:' .. q, 'list')
    redis.call('RPUSH', p .. 'q:' .. q, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`

// luaDeleteDead: ARGV = prefix, then ids. Replies how many were archived.
const luaDeleteDead = luaDeadCommon + `
local p = ARGV[1]
local h = dead_keys(p)
local n = 0
for i = 2, #ARGV do
  if redis.call('HEXISTS', h, ARGV[i]) == 1 then
    dead_drop(p, ARGV[i])
    n = n + 1
  end
end
return n
`

var (
	scriptArchive    = newScript(luaArchive)
	scriptListDead   = newScript(luaListDead)
	scriptRevive     = newScript(luaRevive)
	scriptDeleteDead = newScript(luaDeleteDead)
)
