// Command velero is upstream's cmd/velero (github.com/vmware-tanzu/velero,
// pinned in sim/versions.env as VELERO_VERSION) with one addition for the
// simulation, which runs two velero servers on one host:
//
//	velero server --controller-metrics-address=ADDR
//
// sets the bind address of controller-runtime's metrics server. Velero creates
// its controller manager with ctrl.Options{} and no Metrics options, so
// controller-runtime falls back to the package-level
// sigs.k8s.io/controller-runtime/pkg/metrics/server.DefaultBindAddress (":8080",
// all interfaces); velero itself has no flag for it. The flag writes that
// variable, which is read when `velero server` creates its manager. "0"
// disables the server; the default stays upstream's ":8080". Pass it as
// --controller-metrics-address=ADDR (one argument): velero re-executes itself
// as "velero run-plugins <the server's arguments>", and that command ignores
// unknown flags.
//
// Everything else is upstream's main: velero's own Prometheus metrics stay on
// --metrics-address (default ":8085") and pprof on --profiler-address (default
// "localhost:6060", "" disables it). The binary must be named velero: the root
// command takes its name from os.Args[0] and the built-in plugins run as
// "<os.Args[0]> run-plugins".
package main

import (
	"os"
	"path/filepath"

	"k8s.io/klog/v2"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/vmware-tanzu/velero/pkg/cmd"
	"github.com/vmware-tanzu/velero/pkg/cmd/velero"
)

func main() {
	defer klog.Flush()

	baseName := filepath.Base(os.Args[0])

	root := velero.NewCommand(baseName)
	found := false
	for _, c := range root.Commands() {
		if c.Name() == "server" {
			c.Flags().StringVar(&metricsserver.DefaultBindAddress, "controller-metrics-address", metricsserver.DefaultBindAddress,
				"The address controller-runtime's metrics server binds to (\"0\" disables it). Added by the platform-acceptance simulation's wrapper; upstream velero always uses controller-runtime's default.")
			found = true
		}
	}
	if !found {
		panic("velero wrapper: no 'server' subcommand in " + baseName)
	}

	err := root.Execute()
	cmd.CheckError(err)
}
