// Package store keeps a durable ZeroTask broker's tasks and results in Redis, so that they
// survive a broker restart, can be read through any broker, and are shared by several brokers.
// A broker without a store keeps everything in its own memory and needs none of this.
//
// # What it owns
//
//   - ResultStore: Put (a batch, with a TTL), Get and Wait (blocks until the result is put;
//     woken by the Put, never by polling) of finished tasks' results.
//   - QueueStore: Hold (a batch stored in flight for an owner, a broker instance id; durable
//     when it returns), Claim (up to n tasks from the front of a queue, for an owner), Ack,
//     Requeue (back to the front, attempt counted), Renew and Recover of an owner's lease,
//     Locate (none, queued, or held or running and by whom) and SetRunning (an owner's node
//     runs these tasks, or no longer: any broker's Locate says so). Tasks reach a queue only
//     by being given back (Requeue, Recover, an expired lease), and wait there for a Claim.
//   - Idempotency keys: a task held with a Key is stored only if no other task holds the key
//     (Hold sets Bound to that task's id instead), atomically with the hold; the binding
//     lasts KeyTTL, and a result Put with the Key extends it to the result's TTL. So a key
//     means one task across every broker sharing the store, while that task is in the store
//     or its result is kept (a binding to a task gone without a result is taken over).
//   - Store: both, with Close. Open("redis://host:port/db") connects; Redis implements it.
//   - storetest: the conformance suite a Store passes (run on Redis here).
//
// Everything takes slices, so that the broker writes once per batch: one Put for the results
// that finished meanwhile, one Hold for the tasks that came in, one Claim per queue, one Ack
// for the tasks that finished.
//
// # Ownership
//
// Put and Hold copy what they keep: the caller may reuse its buffers once they return. Get
// and Wait write into the caller's *Result, reusing its Result and Error buffers. Claim
// appends to the caller's slice tasks whose Params and Meta are the caller's to keep.
//
// # Owners and leases
//
// A claimed task is in flight, held by its owner; Hold puts a task in that state without its
// ever waiting in a queue, and from then on a held task is exactly a claimed one (Ack forgets
// it, Requeue, Recover and lease expiry give it back). Each owner has one lease
// (Options.Lease, 30 s by default), renewed by its every Claim and Hold and by Renew: a live
// broker renews more often than the lease (every Lease/3, say). When an owner's lease runs out
// it is taken for dead and every task it holds goes back to the front of its queue, in claim
// order (one order for Claims and Holds together), with an attempt counted; the next Claim of
// any owner does this (so a dead owner's tasks are back in the queues by the time anyone
// claims from them). A broker restarting under the same owner id calls Recover first to get
// its tasks back at once. Leases belong to owners, not tasks, so a long-running task of a live
// broker is never given back, and a renewal costs one write whatever the broker holds.
//
// Attempts counts give-backs: Requeue, Recover and an expired lease each add one; Hold keeps
// the value given (so a broker can carry its own count); Claim does not change it.
//
// Ack forgets a task whether in flight or still queued (the broker's revoke of a queued task);
// a Hold of an id the store already holds (queued or in flight, by any owner) is a no-op, so a
// retried Hold never stores a task twice. Delivery is at least once: a task whose owner dies
// after its node ran it but before the Ack runs again.
//
// # Runs and fencing
//
// A broker starts with Register(owner id), which gives back what earlier runs of the id held
// and returns a run, "<owner>#<epoch>", the owner of all its writes. When a run's lease runs
// out (on Redis's clock) and another owner's Claim gives its tasks back, or a new run of the
// id registers, the old run is fenced: its Hold, Claim, Renew, Ack and Requeue fail with
// ErrFenced and change nothing, so a broker that was cut off, stalled or whose Redis clock
// jumped cannot ack, renew or take tasks that are others' now, and learns that it lost them
// at its next write. Register refuses an id whose current run's lease is live
// (*OwnerLiveError) unless forced by a caller that found that run dead.
//
// Claims are idempotent by token: a Claim retried with its token after a timeout (it may
// have run) replies the tasks it took, so none stays held by a broker that never learned of
// it.
//
// # Bad data
//
// A task record that cannot be decoded (damaged, or written by an unknown version) is set
// aside by Claim (renamed to <p>bad:<id>, counted by Quarantined, logged) instead of failing
// the claim; a held record whose numbers or queue cannot be read is set aside (its bytes in
// <p>bad:<id>) by the give-back or Requeue that meets it; a task key of the wrong type is set
// aside by any script that meets it (Hold, Claim, Ack, Requeue, SetRunning, give-backs), and
// so is an idempotency key of the wrong type (<p>bad:key:<key>, by Hold and Put, then read as
// unbound), and so is a structure key of the wrong type (a queue, an owner's set, held hash
// or running set, holders, owners, fenced, epoch: <p>bad:<name>, by the script that meets it,
// one TYPE per key and script), so one bad key blocks no batch.
// Records carry a version byte; every earlier version is still read, and so are the task keys
// and owners' sets that versions before held hashes held their tasks in (a rolling upgrade;
// TestRedisPreviousLayout).
//
// # Limits
//
// Every limit is an Options field; zero takes the default.
//
//   - Results are forgotten after their TTL (PX on the key); Redis's own maxmemory bounds
//     the rest (under noeviction a full Redis refuses writes, see below). Queued and held
//     tasks are never evicted and never refused when given back.
//   - FlushMax (1,024) results, tasks and acked ids per Redis batch; FlushDelay (0) gather
//     window; the writer's queue holds 4,096 calls, past which callers wait (with their ctx).
//
// # Redis: client choice
//
// github.com/redis/rueidis, chosen by measurement against github.com/redis/go-redis/v9 on the
// broker's write pattern (BENCHMARKS.md, "Result store"): with explicit batches the two are
// close on wall time (the server is the bound), but go-redis allocates 8 to 15 times more per
// batch, CPU the broker needs for routing; and with many callers each sending one command,
// rueidis's auto-pipelining beats go-redis's connection pool by more than 2x. rueidis also
// gives a pub/sub connection (Wait) with hooks. The go-redis code stays only in
// redis_bench_test.go, to rerun the comparison.
//
// # Redis: how writes are batched
//
// Puts, Holds and Acks from every caller go to one writer goroutine, which takes whatever has
// gathered (up to FlushMax items) and sends it as one pipeline of at most three scripts, in
// this order: one for all the results (SET PX + PUBLISH each), one for all the Holds (per
// task: skipped if its hash exists, else stored in flight under its owner with the next claim
// sequence; every owner in the batch renewed, on Redis TIME) and one for all the acked ids.
// The order means that an Ack gathered with the Hold of the same id forgets the task
// (TestWriterFlushOrder).
// The hold and ack scripts work per group (one Hold or Ack call), not per task, wherever they
// can. A held task is one field of its owner's held hash (<p>held:<owner>), not a key of its
// own: a group's hold is one HSET of all its tasks, after one EXISTS over the group's task and
// result keys and one HMGET per owner's held hash (ids in use); its ack is one HDEL. Only an
// id in use (a resend, a collision, a queued or claimed task) takes the per-task path. Each
// field or key a script writes is a command Redis runs, allocates for and appends to its AOF:
// a task key per held task (five fields, listed in the owner's sorted set, then deleted) cost
// Redis about twice the CPU per task of a field in the held hash (BENCHMARKS.md, "Durable
// mode"). The held hash keeps an anchor field (the field "", no task's id), whose long value
// keeps the hash in the hashtable encoding and keeps the last ack from deleting it: in the
// listpack encoding of a small hash, every field set, read or deleted scans the hash.
// Each caller returns when Redis has answered its part. While a batch is on the wire the next
// one gathers, so batches grow with the load and round trips do not bound throughput (group
// commit); up to two batches are on the wire at once, so that a call arriving while one is out
// need not wait for its round trip. A caller's own calls are sequential, so none of its writes
// is reordered; calls of different callers in flight at once have no order between them
// (nothing relies on one: the broker acks a task only after its hold and its result's put have
// returned). FlushDelay defaults to 0: a fixed gather window only delays a lone call and
// starves the group commit of concurrent ones (BENCHMARKS.md).
//
// Hold+Ack, the durable broker's path, is two round trips per task. Ack goes through the writer
// so that many concurrent Acks are group-committed into one script: with many callers that is
// cheaper for the Redis server, the bound, than one script per Ack; a sequential caller pays
// one round trip either way.
//
// Claims, Requeues, Renews and Recovers are one Lua script call each (atomic in Redis), run
// with EVALSHA and rerun with EVAL when Redis answers NOSCRIPT (after a restart or SCRIPT
// FLUSH), as the writer's scripts are; rueidis pipelines them with whatever else is in flight.
// Locate is one script: the task's key (o, q, r: an owner means claimed, running when
// marked by SetRunning; a queue alone queued), else the held hash that has the id (running
// when in the owner's run set), else none.
//
// # Redis: key layout
//
// Under Options.Prefix ("zerotask:" by default; several ZeroTask systems can share one Redis
// under different prefixes):
//
//	<p>r:<id>        string  a result (binary value, see codec.go), with its TTL (PX)
//	<p>done:<id>     channel published once per Put of <id>; Waits subscribe to it
//	<p>q:<queue>     list    ids of the tasks waiting in <queue>, front first
//	<p>t:<id>        hash    a task waiting in a queue, or claimed: d (binary value), q (queue),
//	                         a (attempts), h (hold time), o (owner, when claimed), r (running:
//	                         marked by SetRunning, cleared with o)
//	<p>held:<owner>  hash    the tasks owner stored by Hold: id -> held record
//	                         "<h>,<base>,<i>,<a>,<qlen>,<q><d>" (hold time, Redis ms; claim
//	                         sequence base + i; attempts; queue; value, codec.go), and the
//	                         anchor field ""
//	<p>run:<owner>   set     the ids of owner's held-hash tasks marked running (SetRunning)
//	<p>holders       set     the owners that have a held hash (Register gives back one left
//	                         behind by a version before held hashes)
//	<p>own:<owner>   zset    ids of owner's claimed tasks (task keys with o = owner), scored
//	                         by the claim sequence (and tasks held by versions before held
//	                         hashes)
//	<p>owners        zset    owners (runs), scored by their lease deadline (Redis TIME, ms)
//	<p>epoch         hash    owner id -> the epoch of its last run (Register: run <owner>#<epoch>)
//	<p>fenced        zset    owners whose tasks were given back by a lease expiry or a new run,
//	                         scored by when (forgotten after a day): their writes are refused
//	<p>claim:<o>:<t> list    the ids claim token t of owner o took (2 leases + 1 min)
//	<p>bad:<id>      any     a task key set aside: undecodable, or of the wrong type
//	<p>bad:key:<key> any     an idempotency key of the wrong type, set aside
//	<p>bad:<name>    any     a structure key of the wrong type set aside (q:<queue>, own:<owner>, ...)
//	<p>bad           set     the ids set aside (and "key:<key>" for idempotency keys, the
//	                         names of structure keys)
//	<p>seq           string  the claim sequence, shared by Claim and Hold (one global order)
//	<p>key:<key>     string  an idempotency key: the id of the task that holds it, with a TTL
//	<p>schedules     hash    a periodic task's spec (the broker's JSON) by its name (ScheduleStore)
//	<p>schedule_last hash    the last tick (unix ms) a broker submitted, by schedule name
//	<p>paused        set     the paused queue names (SetPaused)
//	<p>dead          hash    the archive (dead letters): id -> an archived task (archive.go)
//	<p>deadz         zset    archived ids by position (archive time, ms, * 4096, unique)
//	<p>deadbytes     string  the archive's size in bytes; <p>deadlast the last position
//
// Scripts build key names from the prefix and from the records they read, so the store needs
// one Redis (or a primary with replicas), not Redis Cluster. Lease times are Redis's own
// clock, so brokers with skewed clocks agree.
//
// # Redis: durability
//
// Hold, Ack and Put return once Redis has acknowledged the write. What survives then
// is what Redis's persistence keeps. With appendonly yes and appendfsync always, Redis writes
// and fsyncs the AOF before it replies: an acknowledged write survives a kill -9 of
// redis-server (TestRedisSurvivesRestart does exactly that, with queued, claimed and held
// tasks) and a power loss. With appendfsync everysec (Redis's default for AOF) the write
// usually reaches the OS before the reply, but while a background fsync is slow Redis
// postpones it by up to 2 s and replies meanwhile: a kill -9 of redis-server in that window,
// or a power loss, can lose up to about 2 s of acknowledged writes. A broker kill -9 loses
// nothing either way. Without appendonly (and with RDB snapshots off) a Redis restart loses
// everything.
//
// The broker must Hold a task, and wait for it to return, before it acknowledges
// the submit (or the task call) to its client; then after a broker kill -9 and restart every
// acknowledged task is in Redis: queued ones are claimed again, and the ones it held come back
// through Recover (same owner id) or through its lease running out (any broker). Tasks in
// flight on nodes at the crash are therefore run again (at least once).
//
// maxmemory-policy: Open refuses any policy but noeviction (CheckMaxmemoryPolicy), with a
// message saying how to fix it (CONFIG SET maxmemory-policy noeviction). allkeys-* may evict
// queued tasks and in-flight records, losing acknowledged tasks silently (how asynq lost its
// leases); volatile-* evicts only keys with a TTL, which here are results, so a result could
// vanish before its TTL under a client's Wait. Under noeviction a full Redis fails writes
// instead, and the error reaches the caller, who can refuse new work (queue full) rather than lose
// accepted work.
//
// # Redis: Wait
//
// A Wait subscribes to <p>done:<id> (one subscription per id per store, shared by its Waits,
// on one dedicated pub/sub connection), then reads the result; a Put from any broker publishes
// on the channel after storing the result, so a Wait sees either the stored result or the
// message. A Put through the same store wakes its Waits directly. If the pub/sub connection
// breaks, the store reconnects (10 ms to 1 s apart), subscribes every waited id again and
// wakes every Wait to read again, so nothing stored meanwhile is missed. Subscription changes
// are serialized per store (one round trip each): fine for broker.result waits, not a hot path.
//
// # How the broker uses it
//
// In durable mode the broker runs the tasks it accepts on its own nodes and keeps the store
// as the record of what it owes:
//
//   - On accept: Hold the tasks (under its owner id) and wait for it to return before
//     acknowledging them to the client. The tasks never wait in a store queue, so no other
//     broker claims them while this one runs them.
//   - On finish: Put the result, then Ack the task. A crash between the two runs the task
//     again (at least once); the other order could lose a task whose result was never stored.
//   - At start: Recover its own owner id, which gives back the tasks a previous run of it
//     held; and Renew (or Hold, or Claim) more often than the lease while it lives.
//   - When it has idle nodes: Claim from the queues, which is how tasks given back (by
//     Recover, Requeue or a dead broker's lease running out) find a broker again.
//
// Locate tells whether a task is still queued, held (and by which broker) or gone.
//
// # Several brokers
//
// Several brokers can share one Redis: each claims under its own owner id, Claim is atomic (a task
// goes to one broker), results and Waits work through any broker. Use it when one broker must not
// be a single point of failure, when clients are spread over brokers, or when results must outlive
// a broker. It costs throughput, not adds it: every task takes Redis round trips (a Hold, a Put and
// an Ack, each batched), and one Redis, single threaded, then bounds the whole system
// (BENCHMARKS.md gives the figures). For raw throughput on one machine, one broker on memory is the
// faster choice; to grow past one Redis, shard queues over several Redis servers (not built).
package store
