// Replaces pkg/generator/register/register.go of the pinned external-secrets module when
// sim/build.sh compiles it (go build -overlay): the platform's ExternalSecrets use no
// generators, so none is registered (each upstream generator brings a cloud SDK).

package register
