#!/usr/bin/env bash
# Everything after the clusters exist, for a pair of throwaway clusters (the nightly kind
# pair, or this repository's local simulation):
#   1. bootstrap-phase checks (nodes up, no CNI yet; skipped with --no-deploy),
#   2. per cluster: Cilium installed with the values the repository renders for it (with
#      the profile's replacements), Flux installed and pointed at the commit under test
#      (the profile's suspensions and variable replacements as patches),
#   3. wait for every Flux Kustomization that is not suspended,
#   4. the whole suite with the profile, writing JUnit, JSON and Markdown into --out.
# Deploy steps (2, 3) need helm, flux and kubectl; --no-deploy renders their inputs into
# --out and skips them (the local simulation runs the platform already).
#
# Usage:
#   ci/kind-deploy.sh [--no-deploy | --preload-images] --repo DIR --profile FILE --url GIT_URL --revision SHA \
#       --out DIR -- TARGET_ARGS...
# TARGET_ARGS are the suite's target flags, e.g.
#   --kubeconfig ~/.kube/config --context infra=kind-infra --context apps=kind-apps
# or --sim. --preload-images pulls the images the Cilium chart renders and loads them into
# the kind clusters named like the clusters (kind load docker-image), as Cilium's kind CI
# does. The platform-acceptance binary is $PA (default: platform-acceptance on PATH).
set -euo pipefail

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

deploy=1 preload=0 repo="" profile="" url="" revision="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-deploy) deploy=0; shift ;;
    --preload-images) preload=1; shift ;;
    --repo) repo=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --url) url=$2; shift 2 ;;
    --revision) revision=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "kind-deploy: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$repo" ] && [ -n "$profile" ] && [ -n "$url" ] && [ -n "$revision" ] && [ -n "$out" ] && [ $# -gt 0 ] || usage
target=("$@")
pa=${PA:-platform-acceptance}
mkdir -p "$out"

# The kubeconfig context of a cluster: from --context CLUSTER=CONTEXT, else the cluster's name.
context_of() {
  local cluster=$1 i
  for ((i = 0; i < ${#target[@]}; i++)); do
    if [ "${target[$i]}" = "--context" ] && [ "${target[$((i + 1))]%%=*}" = "$cluster" ]; then
      echo "${target[$((i + 1))]#*=}"
      return
    fi
  done
  echo "$cluster"
}

step() { echo "kind-deploy: $*"; }

if [ "$deploy" = 1 ]; then
  step "bootstrap phase (nodes registered, no CNI yet)"
  "$pa" run --repo "$repo" --profile "$profile" "${target[@]}" --phase bootstrap --only 1.3 \
    --progress plain --junit "$out/bootstrap-junit.xml"
else
  step "bootstrap phase skipped (--no-deploy: the clusters run their CNI already)"
fi

clusters=(infra apps)
for cluster in "${clusters[@]}"; do
  ctx=$(context_of "$cluster")
  step "$cluster ($ctx): rendering Cilium values, helm arguments and Flux entry objects"
  "$pa" render values --repo "$repo" --cluster "$cluster" --release kube-system/cilium \
    --profile "$profile" > "$out/$cluster-cilium-values.yaml"
  read -r -a helm_args <<< "$("$pa" render helm-args --repo "$repo" --cluster "$cluster" --release kube-system/cilium)"
  "$pa" render bootstrap --repo "$repo" --cluster "$cluster" --url "$url" --revision "$revision" \
    --profile "$profile" > "$out/$cluster-flux.yaml"
  if [ "$deploy" = 1 ] && [ "$preload" = 1 ]; then
    step "$cluster: preloading the images the Cilium chart renders"
    helm template "${helm_args[@]}" --values "$out/$cluster-cilium-values.yaml" \
      | sed -n 's/^ *image: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' | sort -u > "$out/$cluster-images.txt"
    while read -r image; do
      docker pull --quiet "$image"
      kind load docker-image --name "$cluster" "$image"
    done < "$out/$cluster-images.txt"
  fi
  if [ "$deploy" = 1 ]; then
    step "$cluster: helm upgrade --install ${helm_args[*]}"
    helm upgrade --install "${helm_args[@]}" --kube-context "$ctx" \
      --values "$out/$cluster-cilium-values.yaml" --wait --timeout 10m
    step "$cluster: flux install, then the entry objects at $revision"
    flux install --context "$ctx"
    kubectl --context "$ctx" apply -f "$out/$cluster-flux.yaml"
  else
    step "$cluster: deploy skipped (--no-deploy): would run helm upgrade --install ${helm_args[*]}; values and Flux objects in $out"
  fi
done

if [ "$deploy" = 1 ]; then
  for cluster in "${clusters[@]}"; do
    ctx=$(context_of "$cluster")
    step "$cluster: waiting for the Flux Kustomizations that are not suspended"
    kubectl --context "$ctx" -n flux-system wait kustomizations.kustomize.toolkit.fluxcd.io/flux-system \
      --for=condition=Ready --timeout=10m
    names=$(kubectl --context "$ctx" -n flux-system get kustomizations.kustomize.toolkit.fluxcd.io -o json \
      | jq -r '.items[] | select(.spec.suspend != true) | .metadata.name')
    for name in $names; do
      kubectl --context "$ctx" -n flux-system wait "kustomizations.kustomize.toolkit.fluxcd.io/$name" \
        --for=condition=Ready --timeout=30m
    done
  done
fi

step "acceptance suite"
"$pa" run --repo "$repo" --profile "$profile" "${target[@]}" --allow-writes --progress plain \
  --junit "$out/junit.xml" --json "$out/report.json" --markdown "$out/summary.md"
