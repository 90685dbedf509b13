#!/usr/bin/env bash
# sim/build.sh -- build the pinned upstream binaries for the local two-cluster
# simulation from Go module sources.
#
# usage: sim/build.sh [--force] [--lock] [--list] [NAME...]
#   NAME     one or more of: kube-apiserver kube-controller-manager
#            kube-scheduler etcd kwok minio minio-admin cert-manager velero
#            velero-plugin-for-aws coredns flux-render victoria-metrics vmauth
#            victoria-logs external-secrets source-controller kustomize-controller
#            helm-controller actionlint (default: all of
#            these);
#            chainsaw (benchmark only: built when named)
#   --force  rebuild even when the stamp says the pinned version is built
#   --lock   after resolving, copy the tidied go.mod/go.sum back into
#            sim/go/<wrapper>/ (use after changing a pin in versions.env)
#   --list   print NAME VERSION PACKAGE for every binary and exit
#
# Versions come only from sim/versions.env. Output goes to
#   ${PA_CACHE:-/var/cache/platform-acceptance}/bin/<name>
# with <name>.stamp beside it; a binary whose stamp matches the current pin,
# Go version and wrapper go.mod/go.sum is not rebuilt. Safe to run repeatedly
# and concurrently (a lock file serialises runs).
set -euo pipefail
{ # the whole script is one compound command, so editing it while it runs is safe

SIM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=sim/versions.env
. "$SIM_DIR/versions.env"

PA_CACHE=${PA_CACHE:-/var/cache/platform-acceptance}
BIN_DIR=$PA_CACHE/bin
SRC_DIR=$PA_CACHE/src
JOBS=${PA_BUILD_JOBS:-2}

die() { echo "build.sh: error: $*" >&2; exit 1; }
log() { echo "build.sh: $*"; }

FORCE=0 LOCK=0 LIST=0
WANT=()
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --lock) LOCK=1 ;;
    --list) LIST=1 ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $a (see --help)" ;;
    *) WANT+=("$a") ;;
  esac
done

# ---- what to build -----------------------------------------------------------
# name | wrapper dir (sim/go/<dir>) | Go package | pinned version
K8S_MAJOR=${K8S_VERSION#v}; K8S_MAJOR=${K8S_MAJOR%%.*}
K8S_MINOR=${K8S_VERSION#v*.}; K8S_MINOR=${K8S_MINOR%%.*}
K8S_STAGING_VERSION=v0.${K8S_VERSION#v*.}      # v1.36.3 -> v0.36.3
BINARIES=(
  "etcd|etcd|go.etcd.io/etcd/server/v3|$ETCD_VERSION"
  "kube-apiserver|kubernetes|k8s.io/kubernetes/cmd/kube-apiserver|$K8S_VERSION"
  "kube-controller-manager|kubernetes|k8s.io/kubernetes/cmd/kube-controller-manager|$K8S_VERSION"
  "kube-scheduler|kubernetes|k8s.io/kubernetes/cmd/kube-scheduler|$K8S_VERSION"
  "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok|$KWOK_VERSION"
  "minio|minio|github.com/minio/minio|$MINIO_VERSION"
  "minio-admin|minio-admin|platform-acceptance/sim/minio-admin|$MINIO_ADMIN_VERSION"
  "cert-manager|cert-manager|platform-acceptance/sim/cert-manager|$CERT_MANAGER_VERSION"
  "velero|velero|platform-acceptance/sim/velero|$VELERO_VERSION"
  "external-secrets|external-secrets|platform-acceptance/sim/external-secrets|$EXTERNAL_SECRETS_VERSION"
  "source-controller|flux|github.com/fluxcd/source-controller|$FLUX_SOURCE_CONTROLLER_VERSION"
  "kustomize-controller|flux|github.com/fluxcd/kustomize-controller|$FLUX_KUSTOMIZE_CONTROLLER_VERSION"
  "helm-controller|flux|github.com/fluxcd/helm-controller|$FLUX_HELM_CONTROLLER_VERSION"
  "velero-plugin-for-aws|velero-plugin-for-aws|github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws|$VELERO_PLUGIN_AWS_VERSION"
  "coredns|coredns|platform-acceptance/sim/coredns|$COREDNS_VERSION"
  "flux-render|flux-render|platform-acceptance/sim/flux-render|$FLUX_KUSTOMIZE_VERSION"
  "victoria-metrics|victoria-metrics|github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics|$VICTORIA_METRICS_VERSION"
  "vmauth|victoria-metrics|github.com/VictoriaMetrics/VictoriaMetrics/app/vmauth|$VICTORIA_METRICS_VERSION"
  "victoria-logs|victoria-logs|github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs|$VICTORIA_LOGS_VERSION"
  "actionlint|actionlint|github.com/rhysd/actionlint/cmd/actionlint|$ACTIONLINT_VERSION"
  "chainsaw|chainsaw|github.com/kyverno/chainsaw|$CHAINSAW_VERSION"
)
# Built only when named on the command line.
OPTIONAL=' chainsaw '

if [[ $LIST == 1 ]]; then
  for b in "${BINARIES[@]}"; do IFS='|' read -r n _ p v <<<"$b"; echo "$n $v $p"; done
  exit 0
fi

extra_ldflags() { # name version
  case "$1" in
    kube-*)
      local kv
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        kv+=" -X $pkg.gitVersion=$2 -X $pkg.gitMajor=$K8S_MAJOR -X $pkg.gitMinor=$K8S_MINOR"
        kv+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$K8S_BUILD_DATE"
      done
      echo "$kv" ;;
    minio)
      # pseudo-version v0.0.0-YYYYMMDDhhmmss-<12 hex commit>
      local ts=${2#v0.0.0-}; local commit=${ts#*-}; ts=${ts%%-*}
      local iso="${ts:0:4}-${ts:4:2}-${ts:6:2}T${ts:8:2}:${ts:10:2}:${ts:12:2}Z"
      local tag="RELEASE.${ts:0:4}-${ts:4:2}-${ts:6:2}T${ts:8:2}-${ts:10:2}-${ts:12:2}Z"
      echo " -X github.com/minio/minio/cmd.Version=$iso -X github.com/minio/minio/cmd.ReleaseTag=$tag" \
           "-X github.com/minio/minio/cmd.CommitID=$commit -X github.com/minio/minio/cmd.ShortCommitID=$commit" \
           "-X github.com/minio/minio/cmd.CopyrightYear=${ts:0:4}" ;;
    cert-manager)
      echo " -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$2" ;;
    coredns)
      echo " -X github.com/coredns/coredns/coremain.GitCommit=$2" ;;
    velero)
      # as velero's hack/build.sh, minus GitSHA (the module proxy does not say
      # which commit a version is) and ImageRegistry (its default, "velero", is
      # what the Makefile passes)
      echo " -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=$2" \
           "-X github.com/vmware-tanzu/velero/pkg/buildinfo.GitTreeState=clean" ;;
    victoria-metrics|vmauth|victoria-logs)
      # as VictoriaMetrics' Makefile (<app>-<tag>); ShortVersion() finds the vX.Y.Z in it
      echo " -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=$1-$2" ;;
    *) echo "" ;;
  esac
}

# ---- environment ---------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "'go' is not on PATH; install Go >= 1.26 (the wrapper modules say 'go 1.26.0')"
export GOMODCACHE=$PA_CACHE/go/mod
export GOCACHE=$PA_CACHE/go/build
export GOFLAGS=-mod=mod
export GOTOOLCHAIN=local
export GOWORK=off
export CGO_ENABLED=0          # static binaries, no C toolchain needed
GOVERSION=$(go env GOVERSION) || die "'go env' failed"
case "$GOVERSION" in
  go1.2[6-9]*|go1.[3-9][0-9]*) ;;
  *) die "$GOVERSION is too old: the pinned sources need go >= 1.26.0" ;;
esac
mkdir -p "$BIN_DIR" "$SRC_DIR" "$GOMODCACHE" "$GOCACHE" || die "cannot create $PA_CACHE (set PA_CACHE to a writable directory)"

exec 9>"$PA_CACHE/.build.lock"
if ! flock -n 9; then
  log "another build.sh holds $PA_CACHE/.build.lock; waiting"
  flock 9
fi

sha() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# copy_replaces MODULE@VERSION: apply to the current wrapper go.mod every
# `replace` that MODULE@VERSION's own go.mod has (Go ignores replaces of
# dependencies, so a wrapper must repeat them; velero replaces kopia with its
# fork). Only single-line replaces to another module are supported.
copy_replaces() {
  local gomod r
  gomod=$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -f $gomod ]] || die "could not download $1"
  grep -q '^replace[[:space:]]*($' "$gomod" && die "$1 has a replace block; teach copy_replaces to read it"
  local args=()
  # "replace OLD [OLDVER] => NEW [NEWVER]" -> "OLD[@OLDVER]=NEW[@NEWVER]"
  while read -r r; do
    case "${r#*=}" in .*|/*) die "$1 replaces ${r%%=*} with a local path (${r#*=})" ;; esac
    args+=("-replace=$r")
  done < <(awk '$1 == "replace" && $2 != "(" {
      sub(/[ \t]*\/\/.*/, "")
      if ($3 == "=>") { lhs = $2; rhs = $4; if (NF >= 5) rhs = rhs "@" $5 }
      else if ($4 == "=>") { lhs = $2 "@" $3; rhs = $5; if (NF >= 6) rhs = rhs "@" $6 }
      else next
      print lhs "=" rhs
    }' "$gomod")
  [[ ${#args[@]} -eq 0 ]] || go mod edit "${args[@]}"
  log "$1: ${#args[@]} replace(s) copied into the wrapper"
}

# overlay_upstream WRAPPER MODULE@VERSION (in the wrapper's build directory): copy the
# module (checksum-verified by the go command, without its docs/) to ./upstream, lay the
# files of sim/go/WRAPPER/overlay/ over it at the same relative paths, and build the
# module from that copy (replace MODULE => ./upstream). The go command refuses
# `go build -overlay` for files in the module cache, hence the copy.
overlay_upstream() {
  local w=$1 dir f n=0
  dir=$(go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $dir ]] || die "could not download $2"
  rm -rf upstream
  cp -r "$dir" upstream
  chmod -R u+w upstream
  rm -rf upstream/docs
  while IFS= read -r f; do
    [[ -f upstream/$f ]] || die "sim/go/$w/overlay/$f has no counterpart in $2"
    cp "$SIM_DIR/go/$w/overlay/$f" "upstream/$f"
    n=$((n + 1))
  done < <(cd "$SIM_DIR/go/$w/overlay" && find . -type f | sed 's#^\./##' | sort)
  go mod edit -replace="${2%@*}=./upstream"
  log "$2: copied to $PWD/upstream with $n file(s) of sim/go/$w/overlay laid over it"
}

# prepare_wrapper DIR: copy sim/go/DIR into $SRC_DIR/DIR and apply the pins
declare -A PREPARED=()
prepare_wrapper() {
  local w=$1 src=$SIM_DIR/go/$1 dst=$SRC_DIR/$1
  [[ -n ${PREPARED[$w]:-} ]] && return 0
  [[ -f $src/go.mod ]] || die "missing $src/go.mod"
  rm -rf "$dst"; mkdir -p "$dst"
  cp "$src"/go.mod "$src"/*.go "$dst"/
  [[ -f $src/go.sum ]] && cp "$src/go.sum" "$dst/"
  (
    cd "$dst"
    case "$w" in
      kubernetes)
        go mod edit -require="$K8S_MODULE@$K8S_VERSION"
        # k8s.io/kubernetes requires every staging module at v0.0.0 and
        # replaces it with ./staging/src/k8s.io/<name>; that replace does not
        # apply to us, so map each one to its published v0.<minor>.<patch>.
        local gomod
        gomod=$(go mod download -json "$K8S_MODULE@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
        [[ -f $gomod ]] || die "could not download $K8S_MODULE@$K8S_VERSION"
        local staging
        staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod")
        [[ -n $staging ]] || die "found no staging replaces in $K8S_MODULE@$K8S_VERSION go.mod"
        local args=() m
        for m in $staging; do args+=("-replace=$m=$m@$K8S_STAGING_VERSION"); done
        go mod edit "${args[@]}"
        log "kubernetes wrapper: $(wc -w <<<"$staging") staging modules replaced with $K8S_STAGING_VERSION"
        ;;
      etcd)  go mod edit -require="$ETCD_MODULE@$ETCD_VERSION" ;;
      kwok)  go mod edit -require="$KWOK_MODULE@$KWOK_VERSION" ;;
      minio) go mod edit -require="$MINIO_MODULE@$MINIO_VERSION" ;;
      minio-admin) go mod edit -require="$MINIO_ADMIN_MODULE@$MINIO_ADMIN_VERSION" ;;
      cert-manager) go mod edit -require="$CERT_MANAGER_MODULE@$CERT_MANAGER_VERSION" ;;
      external-secrets)
        go mod edit -require="$EXTERNAL_SECRETS_MODULE@$EXTERNAL_SECRETS_VERSION"
        copy_replaces "$EXTERNAL_SECRETS_MODULE@$EXTERNAL_SECRETS_VERSION"
        overlay_upstream "$w" "$EXTERNAL_SECRETS_MODULE@$EXTERNAL_SECRETS_VERSION" ;;
      flux)
        # Each controller with its /api module at the same version; the replaces the
        # controllers' go.mod files carry (in blocks, with ./api) are written in the wrapper.
        go mod edit -require="$FLUX_SOURCE_CONTROLLER_MODULE@$FLUX_SOURCE_CONTROLLER_VERSION" \
          -require="$FLUX_SOURCE_CONTROLLER_MODULE/api@$FLUX_SOURCE_CONTROLLER_VERSION" \
          -require="$FLUX_KUSTOMIZE_CONTROLLER_MODULE@$FLUX_KUSTOMIZE_CONTROLLER_VERSION" \
          -require="$FLUX_KUSTOMIZE_CONTROLLER_MODULE/api@$FLUX_KUSTOMIZE_CONTROLLER_VERSION" \
          -require="$FLUX_HELM_CONTROLLER_MODULE@$FLUX_HELM_CONTROLLER_VERSION" \
          -require="$FLUX_HELM_CONTROLLER_MODULE/api@$FLUX_HELM_CONTROLLER_VERSION" ;;
      velero)
        go mod edit -require="$VELERO_MODULE@$VELERO_VERSION"
        copy_replaces "$VELERO_MODULE@$VELERO_VERSION" ;;
      velero-plugin-for-aws)
        go mod edit -require="$VELERO_PLUGIN_AWS_MODULE@$VELERO_PLUGIN_AWS_VERSION"
        copy_replaces "$VELERO_PLUGIN_AWS_MODULE@$VELERO_PLUGIN_AWS_VERSION" ;;
      coredns)
        local m args=(-require="$COREDNS_MODULE@$COREDNS_VERSION")
        for m in api apimachinery client-go; do args+=(-require="k8s.io/$m@$K8S_STAGING_VERSION"); done
        go mod edit "${args[@]}" ;;
      flux-render)
        local m args=(-require="$FLUX_KUSTOMIZE_MODULE@$FLUX_KUSTOMIZE_VERSION")
        for m in api apimachinery client-go apiextensions-apiserver; do args+=(-require="k8s.io/$m@$K8S_STAGING_VERSION"); done
        go mod edit "${args[@]}" ;;
      victoria-metrics) go mod edit -require="$VICTORIA_METRICS_MODULE@$VICTORIA_METRICS_VERSION" ;;
      victoria-logs) go mod edit -require="$VICTORIA_LOGS_MODULE@$VICTORIA_LOGS_VERSION" ;;
      actionlint) go mod edit -require="$ACTIONLINT_MODULE@$ACTIONLINT_VERSION" ;;
      chainsaw)
        go mod edit -require="$CHAINSAW_MODULE@$CHAINSAW_VERSION"
        copy_replaces "$CHAINSAW_MODULE@$CHAINSAW_VERSION" ;;
    esac
    if [[ $LOCK == 1 ]] || ! cmp -s go.mod "$src/go.mod" || [[ ! -f go.sum ]]; then
      [[ $LOCK == 1 ]] || log "WARNING: sim/go/$w/go.mod does not match versions.env; resolving (run 'sim/build.sh --lock' to update it)"
      log "go mod tidy in $dst"
      # -e for flux: source-controller's tests import github.com/fluxcd/pkg/helmtestserver
      # v0.40.2, which the module proxy refuses; the binaries do not need it.
      local tidy=(go mod tidy); [[ $w == flux ]] && tidy+=(-e)
      nice -n 10 "${tidy[@]}" || die "go mod tidy failed for wrapper '$w'"
      if [[ $LOCK == 1 ]]; then
        cp go.mod go.sum "$src/"
        log "updated sim/go/$w/go.mod and go.sum"
      fi
    fi
  ) || exit 1
  PREPARED[$w]=1
}

# kwok's controller binary has no built-in stages: kwokctl writes them into the
# --config file. Assemble the same defaults (node-initialize,
# node-heartbeat-with-lease, pod-ready/-complete/-delete) from the pinned kwok
# module into $PA_CACHE/share/kwok/stages.yaml; use with
#   kwok --config=$PA_CACHE/share/kwok/stages.yaml --node-lease-duration-seconds=40
KWOK_STAGES=$PA_CACHE/share/kwok/stages.yaml
write_kwok_stages() {
  local dir f out
  dir=$(cd / && go mod download -json "$KWOK_MODULE@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $dir ]] || die "could not download $KWOK_MODULE@$KWOK_VERSION"
  mkdir -p "${KWOK_STAGES%/*}"
  out=$KWOK_STAGES.tmp
  echo "# kwok default stages from $KWOK_MODULE@$KWOK_VERSION (written by sim/build.sh)" >"$out"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [[ -f $dir/kustomize/stage/$f ]] || die "kwok stage $f missing in $KWOK_MODULE@$KWOK_VERSION"
    { echo "---"; sed '/^---[[:space:]]*$/d' "$dir/kustomize/stage/$f"; } >>"$out"
  done
  echo "$KWOK_VERSION" >"$KWOK_STAGES.stamp"
  mv "$out" "$KWOK_STAGES"
}

# The Go toolchain a binary is compiled with: the machine's, unless versions.env pins
# another (fetched by the go command from the module proxy).
toolchain_for() { # name
  case "$1" in
    chainsaw) echo "$CHAINSAW_GO_TOOLCHAIN" ;;
    *) echo local ;;
  esac
}

wanted() { # name
  if [[ ${#WANT[@]} -eq 0 ]]; then [[ $OPTIONAL != *" $1 "* ]]; return; fi
  local w; for w in "${WANT[@]}"; do [[ $w == "$1" ]] && return 0; done
  return 1
}

# ---- build -------------------------------------------------------------------------
T0=$SECONDS
if [[ $LOCK == 1 ]]; then
  for b in "${BINARIES[@]}"; do
    IFS='|' read -r name wrapper _ _ <<<"$b"
    wanted "$name" && prepare_wrapper "$wrapper"
  done
fi
FOUND=0 BUILT=0 FAILED=0
for b in "${BINARIES[@]}"; do
  IFS='|' read -r name wrapper pkg version <<<"$b"
  wanted "$name" || continue
  FOUND=$((FOUND + 1))
  ldflags="-s -w$(extra_ldflags "$name" "$version")"
  toolchain=$(toolchain_for "$name")
  mapfile -t overlay_files < <(find "$SIM_DIR/go/$wrapper/overlay" -type f 2>/dev/null | sort)
  stamp_want="$name $version $GOVERSION$([[ $toolchain == local ]] || echo " toolchain=$toolchain") wrapper=$(sha "$SIM_DIR/go/$wrapper/go.mod" "$SIM_DIR/go/$wrapper/go.sum" "$SIM_DIR/go/$wrapper/"*.go "${overlay_files[@]}") ldflags=$(sha <<<"$ldflags")"
  out=$BIN_DIR/$name
  if [[ $name == kwok && ( $FORCE == 1 || ! -f $KWOK_STAGES || "$(cat "$KWOK_STAGES.stamp" 2>/dev/null)" != "$KWOK_VERSION" ) ]]; then
    write_kwok_stages
    log "wrote kwok default stages to $KWOK_STAGES"
  fi
  if [[ $FORCE == 0 && -x $out && -f $out.stamp && "$(cat "$out.stamp")" == "$stamp_want" ]]; then
    log "$name $version already built (cached)"
    continue
  fi
  t=$SECONDS
  prepare_wrapper "$wrapper"
  log "building $name $version ($pkg) ..."
  rm -f "$out.stamp"
  if ! (cd "$SRC_DIR/$wrapper" && GOTOOLCHAIN=$toolchain nice -n 10 go build -p "$JOBS" -trimpath -ldflags="$ldflags" -o "$out.tmp" "$pkg"); then
    rm -f "$out.tmp"
    echo "build.sh: error: building $name $version failed after $((SECONDS - t))s (see the go output above)" >&2
    FAILED=$((FAILED + 1))
    continue
  fi
  mv -f "$out.tmp" "$out"
  echo "$stamp_want" >"$out.stamp"
  BUILT=$((BUILT + 1))
  log "built $name $version in $((SECONDS - t))s"
done

[[ $FOUND -gt 0 ]] || die "no binary named ${WANT[*]} (try --list)"
log "total ${BUILT} built, $((FOUND - BUILT - FAILED)) cached, ${FAILED} failed in $((SECONDS - T0))s (binaries in $BIN_DIR)"
[[ $FAILED == 0 ]] || die "$FAILED binary build(s) failed"
exit 0
}
