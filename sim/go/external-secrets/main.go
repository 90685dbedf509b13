// Command external-secrets is upstream's main (github.com/external-secrets/external-secrets,
// pinned in sim/versions.env as EXTERNAL_SECRETS_VERSION), compiled by sim/build.sh with
// the overlay in overlay/: the provider registry holds only the 1Password Connect provider
// and the generator registry none, so the cloud SDKs of the other providers are not
// compiled. Every controller, flag and message is upstream's.
package main

import (
	"github.com/external-secrets/external-secrets/cmd/controller"
)

func main() {
	controller.Execute()
}
