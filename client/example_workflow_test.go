package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zerotask/zerotask/client"
)

// ExampleClient_SubmitWorkflow submits a chain whose second step receives the first's result
// (appended to its params: add(10, 3)), then a chord whose callback sums its group's results.
func ExampleClient_SubmitWorkflow() {
	addr, stop := walkthrough()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	h, err := c.SubmitWorkflow(ctx, client.Chain(
		client.Task("add", []any{1, 2}),
		client.Task("add", []any{10}),
	))
	if err != nil {
		fmt.Println(err)
		return
	}
	var n int
	if err := h.Wait(ctx, &n); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n)

	h, err = c.SubmitWorkflow(ctx, client.Chord([]*client.Flow{
		client.Task("add", []any{1, 2}),
		client.Task("add", []any{3, 4}),
	}, client.Task("sum", nil)))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := h.Wait(ctx, &n); err != nil {
		fmt.Println(err)
		return
	}
	wi, err := c.WorkflowStatus(ctx, h.ID())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n, wi.State, len(wi.Steps))
	// Output:
	// 13
	// 10 SUCCESS 3
}

// ExampleGroup runs members in parallel: the result is the array of theirs, in member order.
func ExampleGroup() {
	addr, stop := walkthrough()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	h, err := c.SubmitWorkflow(ctx, client.Group(client.Task("add", []any{1, 2}), client.Task("subtract", []any{9, 4})))
	if err != nil {
		fmt.Println(err)
		return
	}
	var out []int
	err = h.Wait(ctx, &out)
	fmt.Println(out, err)
	// Output: [3 5] <nil>
}

// ExampleMapReduce runs add over every input in the broker and sum over their results: one
// submit and one wait, whatever the number of inputs.
func ExampleMapReduce() {
	addr, stop := walkthrough()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	inputs := [][2]int{{1, 2}, {3, 4}, {5, 6}}
	total, err := client.MapReduce[int](ctx, c, "add", inputs, "sum")
	fmt.Println(total, err)
	// Output: 21 <nil>
}
