#!/usr/bin/env bash
# sim/crds.sh -- collect real upstream CustomResourceDefinitions for the local
# simulation from pinned Go module zips (versions in sim/versions.env).
#
# usage: sim/crds.sh [--force] [--list] [COMPONENT...]   (default: all)
#
# Output, under ${PA_CACHE:-/var/cache/platform-acceptance}/crds/:
#   <component>/<crd-name>.yaml   one CRD per file (multi-document upstream
#                                 files are split), named metadata.name
#   <component>/MANIFEST.tsv      crd-name, group, kind, file, module@version, source path
#   <component>/.stamp            what was collected; a matching stamp skips the component
#   manifest.tsv                  all components' MANIFEST.tsv rows, with the component first
# and, the same way, under .../crds-next/: later releases of some CRDs that are not
# installed at start (a scenario serves them, see sim/README.md).
# Only documents with apiVersion apiextensions.k8s.io/v1 and kind
# CustomResourceDefinition are kept. Needs: go (for `go mod download`), python3.
set -euo pipefail
{ # the whole script is one compound command, so editing it while it runs is safe

SIM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=sim/versions.env
. "$SIM_DIR/versions.env"

PA_CACHE=${PA_CACHE:-/var/cache/platform-acceptance}
OUT=$PA_CACHE/crds

die() { echo "crds.sh: error: $*" >&2; exit 1; }
log() { echo "crds.sh: $*"; }

FORCE=0 LIST=0
WANT=()
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --list) LIST=1 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $a (see --help)" ;;
    *) WANT+=("$a") ;;
  esac
done

GW_CHANNEL=${CRD_GATEWAY_API_CHANNEL:-standard}
case "$GW_CHANNEL" in standard|experimental) ;; *) die "CRD_GATEWAY_API_CHANNEL must be standard or experimental" ;; esac

# component | module | version | paths inside the module (a directory means its
# *.yaml/*.yml files, not recursive; a file means that file)
COMPONENTS=(
  "cilium|$CRD_CILIUM_MODULE|$CRD_CILIUM_VERSION|pkg/k8s/apis/cilium.io/client/crds/v2 pkg/k8s/apis/cilium.io/client/crds/v2alpha1"
  "mcs-api|$CRD_MCS_API_MODULE|$CRD_MCS_API_VERSION|config/crd"
  "gateway-api|$CRD_GATEWAY_API_MODULE|$CRD_GATEWAY_API_VERSION|config/crd/$GW_CHANNEL"
  "flux-source|$CRD_FLUX_SOURCE_MODULE|$CRD_FLUX_SOURCE_VERSION|config/crd/bases"
  "flux-kustomize|$CRD_FLUX_KUSTOMIZE_MODULE|$CRD_FLUX_KUSTOMIZE_VERSION|config/crd/bases"
  "flux-helm|$CRD_FLUX_HELM_MODULE|$CRD_FLUX_HELM_VERSION|config/crd/bases"
  "cert-manager|$CRD_CERT_MANAGER_MODULE|$CRD_CERT_MANAGER_VERSION|deploy/crds"
  "external-secrets|$CRD_EXTERNAL_SECRETS_MODULE|$CRD_EXTERNAL_SECRETS_VERSION|config/crds/bases"
  "rook|$CRD_ROOK_MODULE|$CRD_ROOK_VERSION|deploy/examples/crds.yaml"
  "cloudnative-pg|$CRD_CLOUDNATIVE_PG_MODULE|$CRD_CLOUDNATIVE_PG_VERSION|config/crd/bases"
  "victoriametrics|$CRD_VICTORIAMETRICS_MODULE|$CRD_VICTORIAMETRICS_VERSION|config/crd/overlay/crd.yaml"
  "volsync|$CRD_VOLSYNC_MODULE|$CRD_VOLSYNC_VERSION|config/crd/bases"
  "velero|$CRD_VELERO_MODULE|$CRD_VELERO_VERSION|config/crd/v1/bases config/crd/v2alpha1/bases"
  "mattermost|$CRD_MATTERMOST_MODULE|$CRD_MATTERMOST_VERSION|config/crd/bases"
)
# later releases, into $PA_CACHE/crds-next/<component> (not installed at start)
NEXT=(
  "mcs-api|$CRD_MCS_API_NEXT_MODULE|$CRD_MCS_API_NEXT_VERSION|config/crd"
)
UNAVAILABLE=(
  "dragonfly|github.com/dragonflydb/dragonfly-operator is refused by the Go module proxy"
  "keycloak|the Keycloak operator CRDs are not published to any reachable registry"
)

if [[ $LIST == 1 ]]; then
  for c in "${COMPONENTS[@]}"; do IFS='|' read -r n m v p <<<"$c"; echo "$n $m@$v $p"; done
  for c in "${NEXT[@]}"; do IFS='|' read -r n m v p <<<"$c"; echo "$n $m@$v $p (crds-next: not installed at start)"; done
  for u in "${UNAVAILABLE[@]}"; do echo "${u%%|*} unavailable: ${u#*|}"; done
  exit 0
fi

command -v go >/dev/null 2>&1 || die "'go' is not on PATH (needed for 'go mod download')"
command -v python3 >/dev/null 2>&1 || die "'python3' is not on PATH (needed to split CRD documents)"
export GOMODCACHE=$PA_CACHE/go/mod
export GOFLAGS=-mod=mod
export GOTOOLCHAIN=local
export GOWORK=off
NEXT_OUT=$PA_CACHE/crds-next
mkdir -p "$OUT" "$NEXT_OUT" "$GOMODCACHE" || die "cannot create $OUT (set PA_CACHE to a writable directory)"

exec 9>"$PA_CACHE/.crds.lock"
if ! flock -n 9; then log "another crds.sh holds $PA_CACHE/.crds.lock; waiting"; flock 9; fi

# split_crds OUTDIR MODULE@VERSION MODDIR PATH... : writes one file per CRD and
# MANIFEST.tsv; prints "<kept> <skipped-non-crd-documents>"
split_crds() {
  python3 - "$@" <<'PY'
import os, re, sys

outdir, modver, moddir, *paths = sys.argv[1:]
files = []
for p in paths:
    full = os.path.join(moddir, p)
    if os.path.isdir(full):
        files += sorted(os.path.join(full, f) for f in os.listdir(full)
                        if f.endswith((".yaml", ".yml")) and os.path.isfile(os.path.join(full, f)))
    elif os.path.isfile(full):
        files.append(full)
    else:
        sys.exit(f"crds.sh: error: {p} not found in {modver}")

def top(doc, key):
    m = re.search(r"^" + key + r":[ \t]*['\"]?([^'\"\s#]+)", doc, re.M)
    return m.group(1) if m else None

def block_child(doc, block, key):
    """value of `key` directly under top-level `block:` (first child indentation)"""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^" + block + r":\s*$", line):
            indent = None
            for l in lines[i + 1:]:
                if not l.strip() or l.lstrip().startswith("#"):
                    continue
                ind = len(l) - len(l.lstrip(" "))
                if ind == 0:
                    break
                if indent is None:
                    indent = ind
                if ind == indent:
                    m = re.match(r"^\s+" + key + r":[ \t]*['\"]?([^'\"\s#]+)", l)
                    if m:
                        return m.group(1)
    return None

kept, skipped, rows, seen = 0, 0, [], {}
for f in files:
    text = open(f, encoding="utf-8").read()
    for doc in re.split(r"^---[ \t]*$", text, flags=re.M):
        if not re.search(r"^\w", doc, re.M):
            continue  # empty or comment-only document
        if top(doc, "kind") != "CustomResourceDefinition" or top(doc, "apiVersion") != "apiextensions.k8s.io/v1":
            skipped += 1
            continue
        name = block_child(doc, "metadata", "name")
        group = block_child(doc, "spec", "group")
        m = re.search(r"^\s+names:\s*\n(?:\s+.*\n)*?\s+kind:[ \t]*(\S+)", doc, re.M)
        kind = m.group(1) if m else None
        if not name or not group or not kind or not name.endswith("." + group):
            sys.exit(f"crds.sh: error: cannot read name/group/kind of a CRD in {f} (name={name} group={group} kind={kind})")
        rel = os.path.relpath(f, moddir)
        if name in seen:
            sys.exit(f"crds.sh: error: CRD {name} appears twice ({seen[name]} and {rel})")
        seen[name] = rel
        body = doc.strip("\n") + "\n"
        with open(os.path.join(outdir, name + ".yaml"), "w", encoding="utf-8") as o:
            o.write("---\n# source: " + modver + " " + rel + "\n" + body)
        rows.append("\t".join([name, group, kind, name + ".yaml", modver, rel]))
        kept += 1
rows.sort()
with open(os.path.join(outdir, "MANIFEST.tsv"), "w", encoding="utf-8") as o:
    o.write("".join(r + "\n" for r in rows))
print(kept, skipped)
PY
}

T0=$SECONDS
FAILED=0 FOUND=0
for entry in "${COMPONENTS[@]/#/$OUT|}" "${NEXT[@]/#/$NEXT_OUT|}"; do
  base=${entry%%|*} c=${entry#*|}
  where=""; [[ $base == "$NEXT_OUT" ]] && where=" (crds-next)"
  IFS='|' read -r comp module version paths <<<"$c"
  if [[ ${#WANT[@]} -gt 0 ]]; then
    hit=0; for w in "${WANT[@]}"; do [[ $w == "$comp" ]] && hit=1; done
    [[ $hit == 1 ]] || continue
  fi
  FOUND=$((FOUND + 1))
  [[ -n $module && -n $version ]] || die "$comp: module/version missing in versions.env"
  dir=$base/$comp
  stamp_want="$module@$version paths=$paths splitter=$(sed -n '/^split_crds()/,/^}/p' "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
  if [[ $FORCE == 0 && -f $dir/.stamp && "$(cat "$dir/.stamp")" == "$stamp_want" && -f $dir/MANIFEST.tsv ]]; then
    log "$comp $version$where: $(wc -l <"$dir/MANIFEST.tsv") CRDs (cached)"
    continue
  fi
  t=$SECONDS
  if ! json=$(cd / && go mod download -json "$module@$version" 2>&1); then
    echo "crds.sh: error: $comp: go mod download $module@$version failed:" >&2
    while IFS= read -r line; do echo "    $line"; done <<<"$json" >&2
    FAILED=$((FAILED + 1)); continue
  fi
  moddir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
  [[ -d $moddir ]] || { echo "crds.sh: error: $comp: no module directory in go mod download output" >&2; FAILED=$((FAILED + 1)); continue; }
  tmp=$base/.$comp.tmp
  rm -rf "$tmp"; mkdir -p "$tmp"
  # shellcheck disable=SC2086  # paths is a space-separated list
  if ! counts=$(split_crds "$tmp" "$module@$version" "$moddir" $paths); then
    rm -rf "$tmp"; FAILED=$((FAILED + 1)); continue
  fi
  read -r kept skipped <<<"$counts"
  if [[ $kept == 0 ]]; then
    echo "crds.sh: error: $comp: no CustomResourceDefinition found in $module@$version $paths" >&2
    rm -rf "$tmp"; FAILED=$((FAILED + 1)); continue
  fi
  echo "$stamp_want" >"$tmp/.stamp"
  rm -rf "$dir"; mv "$tmp" "$dir"
  note=""; [[ $skipped -gt 0 ]] && note=" ($skipped non-CRD documents skipped)"
  log "$comp $version$where: $kept CRDs$note in $((SECONDS - t))s"
done
[[ $FOUND -gt 0 ]] || die "no component named ${WANT[*]} (try --list)"
for u in "${UNAVAILABLE[@]}"; do
  log "${u%%|*}: not collected: ${u#*|} (see sim/README.md)"
done

# rebuild the global manifest from every collected component
{
  for d in "$OUT"/*/; do
    [[ -f $d/MANIFEST.tsv ]] || continue
    sed "s|^|$(basename "$d")\t|" "$d/MANIFEST.tsv"
  done
} >"$OUT/manifest.tsv.tmp"
mv "$OUT/manifest.tsv.tmp" "$OUT/manifest.tsv"
log "total $(wc -l <"$OUT/manifest.tsv") CRDs in $OUT (manifest.tsv) in $((SECONDS - T0))s"
[[ $FAILED == 0 ]] || die "$FAILED component(s) failed"
exit 0
}
