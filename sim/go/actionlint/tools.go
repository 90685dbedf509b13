//go:build tools

// Package tools pins actionlint, the GitHub Actions workflow linter the tests run over
// ci/*.yaml (tests/ci_static.rs).
package tools

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
