#!/usr/bin/env bash
# Definition-of-Done gate of a change to the planning document, for CI: runs
# `platform-acceptance gate` and leaves the pull-request comment (gate-comment.md), JUnit
# (gate-junit.xml) and JSON (gate.json) in --out. Exits with the gate's code: 0 every
# selected criterion passed, 1 any did not, 2 usage or configuration error.
#
# Usage:
#   ci/gate.sh --doc PATH --base REV --repo DIR --out DIR [--profile FILE] -- TARGET_ARGS...
# TARGET_ARGS are the target flags of `platform-acceptance run`, e.g.
#   --kubeconfig "$KUBECONFIG_FILE" --context infra=admin@infra --context apps=admin@apps
# or --sim. The platform-acceptance binary is $PA (default: platform-acceptance on PATH).
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

doc="" base="" repo="" out="" profile=()
while [ $# -gt 0 ]; do
  case "$1" in
    --doc) doc=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --repo) repo=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --profile) profile=(--profile "$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "gate: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$doc" ] && [ -n "$base" ] && [ -n "$repo" ] && [ -n "$out" ] && [ $# -gt 0 ] || usage
mkdir -p "$out"

status=0
"${PA:-platform-acceptance}" gate --doc "$doc" --base "$base" --repo "$repo" ${profile[@]+"${profile[@]}"} "$@" \
  --progress plain --markdown "$out/gate-comment.md" --junit "$out/gate-junit.xml" --json "$out/gate.json" || status=$?
# One marker line lets the pipeline find and update its own comment instead of adding one per push.
printf '\n<!-- platform-acceptance-gate -->\n' >> "$out/gate-comment.md"
exit "$status"
