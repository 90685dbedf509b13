//go:build tools

// Package tools pins the VictoriaMetrics single-node server and vmauth that sim/build.sh
// builds (both from the same module, so they share one dependency graph).
package tools

import (
	_ "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
	_ "github.com/VictoriaMetrics/VictoriaMetrics/app/vmauth"
)
