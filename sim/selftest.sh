#!/usr/bin/env bash
# sim/selftest.sh -- sanity test of the binaries from sim/build.sh and the CRDs
# from sim/crds.sh: one etcd + kube-apiserver + kube-controller-manager +
# kube-scheduler + kwok (+ MinIO) on 127.0.0.1, all CRDs applied server-side and
# waited for Established, one kwok Node made Ready, one Deployment's Pod
# scheduled onto it and Running. Everything it started is stopped on exit.
#
# usage: sim/selftest.sh [--keep]     (--keep: leave the work dir for inspection)
# env:   PA_CACHE (default /var/cache/platform-acceptance)
#        PA_SELFTEST_PORT_BASE (default 31000; uses base+0 .. base+9 on 127.0.0.1)
#        KUBECTL (default: kubectl on PATH)
set -euo pipefail
{ # the whole script is one compound command, so editing it while it runs is safe

PA_CACHE=${PA_CACHE:-/var/cache/platform-acceptance}
BIN=$PA_CACHE/bin
KUBECTL=${KUBECTL:-kubectl}
BASE=${PA_SELFTEST_PORT_BASE:-31000}
KEEP=0; [[ ${1:-} == --keep ]] && KEEP=1

P_ETCD=$BASE P_ETCD_PEER=$((BASE + 1)) P_API=$((BASE + 2)) P_KCM=$((BASE + 3)) P_SCHED=$((BASE + 4))
P_KWOK=$((BASE + 5)) P_MINIO=$((BASE + 6)) P_MINIO_CONSOLE=$((BASE + 7))
SERVICE_CIDR=10.245.0.0/16 SERVICE_IP=10.245.0.1 CLUSTER_CIDR=10.244.0.0/16

die() { echo "selftest: FAIL: $*" >&2; exit 1; }
log() { echo "selftest: $*"; }

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok minio; do
  [[ -x $BIN/$b ]] || die "$BIN/$b missing: run sim/build.sh first"
done
[[ -f $PA_CACHE/crds/manifest.tsv ]] || die "no CRDs in $PA_CACHE/crds: run sim/crds.sh first"
[[ -f $PA_CACHE/share/kwok/stages.yaml ]] || die "no kwok stages in $PA_CACHE/share/kwok: run sim/build.sh kwok"
command -v openssl >/dev/null || die "openssl not on PATH"
command -v "$KUBECTL" >/dev/null || die "kubectl not on PATH (set KUBECTL)"
command -v curl >/dev/null || die "curl not on PATH"
for p in $P_ETCD $P_ETCD_PEER $P_API $P_KCM $P_SCHED $P_KWOK $P_MINIO $P_MINIO_CONSOLE; do
  if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use (set PA_SELFTEST_PORT_BASE)"; fi
done

W=$(mktemp -d /tmp/pa-selftest.XXXXXX)
declare -A PIDS=()
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
  local rc=$? n
  for n in kwok kube-scheduler kube-controller-manager minio kube-apiserver etcd; do
    [[ -n ${PIDS[$n]:-} ]] && kill "${PIDS[$n]}" 2>/dev/null || true
  done
  for n in "${!PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "${PIDS[$n]}" 2>/dev/null || break; sleep 0.2; done
    kill -9 "${PIDS[$n]}" 2>/dev/null || true
    wait "${PIDS[$n]}" 2>/dev/null || true
  done
  if [[ $KEEP == 1 || $rc != 0 ]]; then echo "selftest: logs and config kept in $W"; else rm -rf "$W"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # name args... ; logs to $W/<name>.log
  local n=$1; shift
  "$@" >"$W/$n.log" 2>&1 &
  PIDS[$n]=$!
  log "started $n (pid ${PIDS[$n]})"
}
wait_for() { # description timeout-seconds command...
  local what=$1 t=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $end ]] || die "timed out after ${t}s waiting for $what"
    sleep 0.5
  done
}
rss() { # name -> "VmRSS MiB (peak VmHWM MiB)"
  awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{printf "%d MiB (peak %d MiB)", r/1024, h/1024}' "/proc/${PIDS[$1]}/status"
}

# ---- PKI (EC P-256; RSA for the service-account key) ---------------------------
cd "$W"
t=$SECONDS
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -out ca.crt -days 3650 -subj "/CN=pa-sim-ca" 2>/dev/null
cert() { # name subject extfile-lines
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%b\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext" 2>/dev/null
}
cert apiserver "/CN=kube-apiserver" \
  "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin "/O=system:masters/CN=pa-admin" "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
cert front-proxy-client "/CN=front-proxy-client" "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
cert kcm "/CN=system:kube-controller-manager" "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
cert scheduler "/CN=system:kube-scheduler" "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
kubeconfig() { # name cert
  cat >"$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster: {server: "https://127.0.0.1:$P_API", certificate-authority: "$W/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$W/$2.crt", client-key: "$W/$2.key"}
contexts:
- name: sim
  context: {cluster: sim, user: $2}
current-context: sim
EOF
}
kubeconfig admin admin; kubeconfig kcm kcm; kubeconfig scheduler scheduler
log "PKI and kubeconfigs in $((SECONDS - t))s"
K() { "$KUBECTL" --kubeconfig "$W/admin.kubeconfig" "$@"; }

# ---- etcd ----------------------------------------------------------------------
"$BIN/etcd" --version | head -1
t=$SECONDS
start etcd "$BIN/etcd" --name=sim --data-dir="$W/etcd" \
  --listen-client-urls="http://127.0.0.1:$P_ETCD" --advertise-client-urls="http://127.0.0.1:$P_ETCD" \
  --listen-peer-urls="http://127.0.0.1:$P_ETCD_PEER" --initial-advertise-peer-urls="http://127.0.0.1:$P_ETCD_PEER" \
  --initial-cluster="sim=http://127.0.0.1:$P_ETCD_PEER" \
  --unsafe-no-fsync=true --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) --log-level=warn
wait_for "etcd /health" 30 curl -fsS "http://127.0.0.1:$P_ETCD/health"
log "etcd healthy in $((SECONDS - t))s"

# ---- kube-apiserver --------------------------------------------------------------
"$BIN/kube-apiserver" --version
t=$SECONDS
start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$P_ETCD" \
  --bind-address=127.0.0.1 --secure-port="$P_API" --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC \
  --client-ca-file="$W/ca.crt" \
  --tls-cert-file="$W/apiserver.crt" --tls-private-key-file="$W/apiserver.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$W/sa.pub" --service-account-signing-key-file="$W/sa.key" \
  --requestheader-client-ca-file="$W/ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$W/front-proxy-client.crt" --proxy-client-key-file="$W/front-proxy-client.key" \
  --allow-privileged=true
wait_for "kube-apiserver /readyz" 120 K get --raw /readyz
log "kube-apiserver ready in $((SECONDS - t))s: $(K get --raw /readyz)"
log "server version: $(K version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | tail -1)"

# ---- controller-manager, scheduler -------------------------------------------------
start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$W/kcm.kubeconfig" \
  --authentication-kubeconfig="$W/kcm.kubeconfig" --authorization-kubeconfig="$W/kcm.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$P_KCM" --leader-elect=false \
  --cluster-name=pa-selftest \
  --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$W/sa.key" --root-ca-file="$W/ca.crt" \
  --cluster-signing-cert-file="$W/ca.crt" --cluster-signing-key-file="$W/ca.key"
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$W/scheduler.kubeconfig" \
  --authentication-kubeconfig="$W/scheduler.kubeconfig" --authorization-kubeconfig="$W/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$P_SCHED" --leader-elect=false
wait_for "kube-controller-manager /healthz" 60 curl -fsSk "https://127.0.0.1:$P_KCM/healthz"
wait_for "kube-scheduler /healthz" 60 curl -fsSk "https://127.0.0.1:$P_SCHED/healthz"
log "kube-controller-manager and kube-scheduler healthy"

# ---- CRDs ----------------------------------------------------------------------------
t=$SECONDS
fails=0
for d in "$PA_CACHE"/crds/*/; do
  comp=$(basename "$d")
  if ! out=$(K apply --server-side --field-manager=pa-sim -f "$d" 2>&1); then
    fails=$((fails + 1)); echo "$out" | grep -iv "serverside-applied\|created\|unchanged" | sed "s/^/  $comp: /" >&2
  fi
done
total=$(wc -l <"$PA_CACHE/crds/manifest.tsv")
log "server-side applied $total CRDs in $((SECONDS - t))s ($fails component(s) with errors)"
t=$SECONDS
K wait --for condition=Established crd --all --timeout=180s >/dev/null || die "not every CRD became Established"
est=$(K get crd -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Established")].status}{"\n"}{end}' | grep -c ' True$')
log "$est/$total CRDs Established (waited $((SECONDS - t))s)"
[[ $fails == 0 && $est -ge $total ]] || die "CRD apply: $fails failed components, $est/$total established"
# which CRDs would fail a client-side apply (last-applied annotation > 256 KiB)?
big=()
while IFS=$'\t' read -r comp name _ _ file _ _; do
  if ! K apply --dry-run=server -f "$PA_CACHE/crds/$comp/$file" >/dev/null 2>"$W/csa.err"; then
    big+=("$name")
  fi
done <"$PA_CACHE/crds/manifest.tsv"
log "client-side apply (dry-run=server) fails for ${#big[@]} CRDs: ${big[*]:-none}"

# ---- kwok: a Node becomes Ready, a Pod gets scheduled and Running ----------------------
"$BIN/kwok" --version 2>/dev/null | head -1 || true
start kwok "$BIN/kwok" --kubeconfig="$W/admin.kubeconfig" \
  --config="$PA_CACHE/share/kwok/stages.yaml" \
  --manage-all-nodes=true --node-lease-duration-seconds=40 \
  --node-ip=127.0.0.1 --node-port="$P_KWOK" --server-address="127.0.0.1:$P_KWOK"
t=$SECONDS
K apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
EOF
K wait --for condition=Ready node/kwok-node-0 --timeout=60s >/dev/null || die "kwok did not make node/kwok-node-0 Ready"
log "node/kwok-node-0 Ready in $((SECONDS - t))s; podCIDR=$(K get node kwok-node-0 -o jsonpath='{.spec.podCIDR}')"
t=$SECONDS
K create deployment selftest --image=registry.invalid/pause:none --replicas=2 >/dev/null
wait_for "Deployment selftest available" 90 bash -c "[[ \$('$KUBECTL' --kubeconfig '$W/admin.kubeconfig' get deploy selftest -o jsonpath='{.status.availableReplicas}') == 2 ]]"
log "deployment/selftest 2/2 available in $((SECONDS - t))s: $(K get pods -l app=selftest -o jsonpath='{range .items[*]}{.metadata.name}={.spec.nodeName}/{.status.phase}/{.status.podIP} {end}')"

# ---- MinIO -------------------------------------------------------------------------------
"$BIN/minio" --version 2>/dev/null | head -1 || true
t=$SECONDS
start minio env MINIO_ROOT_USER=pa-sim MINIO_ROOT_PASSWORD=pa-sim-secret MINIO_BROWSER=off MINIO_UPDATE=off \
  "$BIN/minio" server --quiet --address "127.0.0.1:$P_MINIO" --console-address "127.0.0.1:$P_MINIO_CONSOLE" "$W/minio"
wait_for "minio /minio/health/ready" 60 curl -fsS "http://127.0.0.1:$P_MINIO/minio/health/ready"
# curl's SigV4 (7.88) does not hash the body: declare it unsigned, or MinIO answers 403
S3=(curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "pa-sim:pa-sim-secret" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
"${S3[@]}" -X PUT "http://127.0.0.1:$P_MINIO/selftest" >/dev/null
echo "hello" | "${S3[@]}" -X PUT --data-binary @- "http://127.0.0.1:$P_MINIO/selftest/hello.txt" >/dev/null
[[ $("${S3[@]}" "http://127.0.0.1:$P_MINIO/selftest/hello.txt") == hello ]] || die "minio object round-trip failed"
log "minio ready and S3 PUT/GET round-trip ok in $((SECONDS - t))s"

# ---- memory ---------------------------------------------------------------------------------
sleep 5
for n in etcd kube-apiserver kube-controller-manager kube-scheduler kwok minio; do
  log "RSS $n: $(rss "$n")"
done
log "PASS"
exit 0
}
