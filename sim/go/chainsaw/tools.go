//go:build tools

// Package tools pins chainsaw, the declarative Kubernetes end-to-end test tool the
// benchmark examples/bench_chainsaw.rs runs side by side with the harness. Built only on
// request (`sim/build.sh chainsaw`), never by default or in CI.
package tools

import (
	_ "github.com/kyverno/chainsaw"
)
