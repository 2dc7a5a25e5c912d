package node

import "testing"

// TestFreeList: done tasks come back reset, last in first out, and the list keeps at most
// maxFreeTasks (past it push refuses, and popWait leaves the task to the pool).
func TestFreeList(t *testing.T) {
	var l freeList
	for i := range maxFreeTasks {
		tk := newTask([]byte(`"x"`), []byte("add"), []byte("[1,2]"))
		tk.attempt, tk.queue, tk.startIdx = 3, "q", i
		if !l.push(tk) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if l.push(newTask(nil, []byte("add"), nil)) || l.n != maxFreeTasks {
		t.Fatalf("push past the bound kept (n %d)", l.n)
	}
	got := 0
	for tk := l.pop(); tk != nil; tk = l.pop() {
		if tk.id != nil || tk.method != nil || tk.params != nil || tk.next != nil || tk.attempt != 0 || tk.queue != "" || tk.startIdx != -1 {
			t.Fatalf("a task came back not reset: %+v", tk)
		}
		got++
	}
	if got != maxFreeTasks || l.n != 0 || l.head != nil {
		t.Fatalf("popped %d, n %d", got, l.n)
	}

	// The bytes of the tasks' storage bound it too: tasks of the largest size kept fill it at
	// maxFreeBytes.
	big := make([]byte, maxPooledTask-64)
	kept := 0
	for l.push(newTask(nil, []byte("add"), big)) {
		kept++
	}
	if want := maxFreeBytes / maxPooledTask; kept < want-1 || kept > want || l.bytes > maxFreeBytes {
		t.Fatalf("kept %d tasks of %d bytes (%d bytes), want about %d within %d", kept, len(big), l.bytes, want, maxFreeBytes)
	}
	for l.pop() != nil {
	}
	if l.n != 0 || l.bytes != 0 {
		t.Fatalf("emptied: n %d, bytes %d", l.n, l.bytes)
	}

	// Through the queue: a worker's done task reaches the reader's takeFree.
	var q taskQueue
	q.init()
	q.workers = 1
	done := newTask([]byte(`"y"`), []byte("add"), nil)
	q.push([]*task{newTask([]byte(`"z"`), []byte("add"), nil)})
	if next, _ := q.popWait(done); next == nil || string(next.id) != `"z"` {
		t.Fatalf("popWait gave %v", next)
	}
	if l := q.takeFree(); l.head != done || l.n != 1 || done.next != nil || q.free.n != 0 || q.free.head != nil {
		t.Fatalf("takeFree gave %p (n %d), want the done task %p", l.head, l.n, done)
	}
}
