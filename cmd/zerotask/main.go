// Command zerotask is ZeroTask's one binary: broker, node, client calls and the benchmark.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("zerotask", version)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: zerotask version")
	os.Exit(2)
}
