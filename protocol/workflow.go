package protocol

// Workflows (docs/workflows.md): a broker.submit whose params carry ParamWorkflow instead of a
// method submits a whole graph of tasks, run by the broker.
//
// A graph node is one JSON object:
//
//	{"method":M,"params":P, ...task options}  a task (params an array, or absent)
//	{"chain":[node, ...]}                      each step after the previous one, given its result
//	{"group":[node, ...]}                      members in parallel; result: their results' array
//	{"group":[node, ...],"callback":node}      a chord: the group, then callback given the array
//
// The result-passing rule: a task that receives a result (the next step of a chain, a chord's
// callback) has it appended as the last element of its params array ([] when it has none):
// {"method":"add","params":[1]} after a step that gave 2 runs add(1, 2).

// The members of a graph and of broker.submit's params for one.
const (
	ParamWorkflow  = "workflow" // ParamWorkflow: broker.submit's param holding a graph (and, in a record, true).
	ParamPolicy    = "policy"   // ParamPolicy: broker.submit's failure policy of a graph (PolicyFailFast by default).
	MemberChain    = "chain"    // MemberChain: a graph node running its steps in order.
	MemberGroup    = "group"    // MemberGroup: a graph node running its members in parallel.
	MemberCallback = "callback" // MemberCallback: beside MemberGroup, makes the group a chord.
	MemberSteps    = "steps"    // MemberSteps: a graph record's task steps, in graph order.
	MemberCounts   = "counts"   // MemberCounts: a graph record's number of steps per state.
)

// The failure policies of a graph. Under both a failing step fails its chain.
const (
	// PolicyFailFast: the first failing step fails the whole graph at once; every step not
	// finished is revoked.
	PolicyFailFast = "fail_fast"
	// PolicyContinue: a group whose member failed still completes, with {"error":E} in that
	// member's place of its results array, so that a chord's callback runs with the errors in
	// place. A failure that reaches the root fails the graph.
	PolicyContinue = "continue"
)

// StatePending is the state of a graph's step that has not started: it waits for the steps
// before it.
const StatePending = "PENDING"

// WorkflowMethod is the method a graph's record names.
const WorkflowMethod = "workflow"

// WorkflowQueue is the store queue (durable mode) of the graphs themselves: a graph is kept
// as a task of that queue whose params are its submit's params. No node serves it (a
// broker.* name cannot be submitted); brokers claim from it to resume graphs.
const WorkflowQueue = "broker.workflow"

// Bounds of a graph (the broker's defaults; Config.MaxWorkflowSteps, MaxWorkflowDepth and
// MaxWorkflows set them).
const (
	DefaultMaxWorkflowSteps = 100_000 // DefaultMaxWorkflowSteps bounds the tasks of one graph.
	DefaultMaxWorkflowDepth = 32      // DefaultMaxWorkflowDepth bounds the nesting of a graph's chains, groups and chords.
	DefaultMaxWorkflows     = 10_000  // DefaultMaxWorkflows bounds the graphs a broker keeps (running, and finished for ResultTTL).
)
