//go:build tools

// Package tools pins the Kubernetes control-plane commands that sim/build.sh
// builds, so `go mod tidy` keeps every module they need in go.mod/go.sum.
// The build tag keeps this file out of every real build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
