//go:build tools

// Package tools pins velero-plugin-for-aws, the velero.io/aws object store and
// volume snapshotter plugin that the simulation's velero server loads from its
// --plugin-dir (upstream has no replaces, so a plain requirement is enough; its
// go.mod requires velero v1.18.1, which this wrapper keeps, as upstream's
// release build does).
package tools

import (
	_ "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws"
)
