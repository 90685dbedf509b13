//go:build tools

// Package tools pins the Flux controllers sim/build.sh builds: source-controller,
// kustomize-controller and helm-controller, whose main packages are their modules' roots.
// One module, so the dependencies they share compile once. `go install` cannot build them:
// each go.mod replaces its /api module with ./api, which only works inside its own
// repository; the wrapper requires each /api module at the controller's version instead.
package tools

import (
	_ "github.com/fluxcd/helm-controller"
	_ "github.com/fluxcd/kustomize-controller"
	_ "github.com/fluxcd/source-controller"
)
