//go:build tools

// Package tools pins the MinIO server command that sim/build.sh builds.
package tools

import (
	_ "github.com/minio/minio"
)
