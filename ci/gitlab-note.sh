#!/usr/bin/env bash
# Posts FILE as a note on the merge request of this pipeline, or updates the note an
# earlier run of the gate posted (found by its marker line). Needs PA_GITLAB_TOKEN and
# GitLab's predefined CI_API_V4_URL, CI_PROJECT_ID and CI_MERGE_REQUEST_IID.
# Usage: ci/gitlab-note.sh FILE
set -euo pipefail
file=${1:?usage: ci/gitlab-note.sh FILE}
api="$CI_API_V4_URL/projects/$CI_PROJECT_ID/merge_requests/$CI_MERGE_REQUEST_IID/notes"
auth="PRIVATE-TOKEN: ${PA_GITLAB_TOKEN:?PA_GITLAB_TOKEN is not set}"
id=$(curl -fsS --header "$auth" "$api?per_page=100" \
  | jq -r '[.[] | select(.body | contains("<!-- platform-acceptance-gate -->"))][0].id // empty')
if [ -n "$id" ]; then
  curl -fsS --request PUT --header "$auth" --data-urlencode "body@$file" "$api/$id" > /dev/null
else
  curl -fsS --request POST --header "$auth" --data-urlencode "body@$file" "$api" > /dev/null
fi
echo "gitlab-note: ${id:+updated note $id}${id:-posted a note} on !$CI_MERGE_REQUEST_IID"
