// Command coredns is CoreDNS with only the plugins the simulation's cluster DNS uses:
// kubernetes (cluster.local from Services and EndpointSlices, clusterset.local from
// MCS-API ServiceImports through its `multicluster` option), bind, errors, log and
// health. Upstream's own main (github.com/coredns/coredns/coredns.go) links every
// plugin, including the cloud DNS providers, which the simulation never runs.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
