//go:build tools

// Package tools pins the VictoriaLogs single-node server that sim/build.sh builds.
package tools

import (
	_ "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
)
