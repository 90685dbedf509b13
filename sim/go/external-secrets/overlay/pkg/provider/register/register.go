// Replaces pkg/provider/register/register.go of the pinned external-secrets module when
// sim/build.sh compiles it (go build -overlay): the simulation's platform has one
// ClusterSecretStore, backed by 1Password Connect, so only that provider is registered.
// A store of any other provider is reported by upstream's own code as having no provider.

package register

// packages imported here are registered to the controller schema.

import (
	_ "github.com/external-secrets/external-secrets/pkg/provider/onepassword"
)
