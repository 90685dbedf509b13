#!/usr/bin/env python3
"""Derives fixtures/gitops-community from fixtures/gitops.

Same clusters, components, manifests and variable values, rearranged into the
per-component `ks.yaml` + `app/` layout (see fixtures/gitops-community/README.md).
Run from the repository root; it rewrites fixtures/gitops-community/kubernetes and
copies talos/, scripts/ and the Taskfiles.
"""
import os
import re
import shutil

import yaml

SRC = "fixtures/gitops"
DST = "fixtures/gitops-community"
K = f"{SRC}/kubernetes"

B, I, A = ("infra", "apps"), ("infra",), ("apps",)

# (namespace, app, ks name, clusters, files (from kubernetes/), dependsOn, sub-folder)
APPS = [
    ("flux-system", "flux-alerts", "flux-alerts", B, ["bases/flux/notification.yaml", "infrastructure/gitops/flux/externalsecret.yaml"], ["external-secrets"], "app"),
    ("kube-system", "cilium", "cilium", B, ["bases/cilium/helmrelease.yaml", "@cilium-oci"], [], "app"),
    ("kube-system", "cilium", "cilium-config", B, ["@bgp", "infrastructure/networking/cilium/lb-ipam/ippool.yaml", "infrastructure/networking/cilium/gateway/gatewayclass.yaml", "infrastructure/networking/cilium/clustermesh/mcs-api-crds.yaml", "infrastructure/networking/cilium/clustermesh/externalsecret.yaml"], ["cilium", "external-secrets"], "config"),
    ("kube-system", "coredns", "coredns", B, ["bases/coredns/helmrelease.yaml", "infrastructure/networking/coredns/rbac-mcsapi.yaml"], ["cilium"], "app"),
    ("kube-system", "spegel", "spegel", B, ["bases/spegel/helmrelease.yaml", "@oci:spegel"], ["cilium"], "app"),
    ("kube-system", "snapshot-controller", "snapshot-controller", B, ["bases/snapshot-controller/helmrelease.yaml"], [], "app"),
    ("kube-system", "platform-rbac", "platform-rbac", B, ["infrastructure/security/rbac/clusterroles.yaml", "infrastructure/security/rbac/clusterrolebindings.yaml"], [], "app"),
    ("networking", "external-dns", "external-dns", B, ["bases/external-dns/helmrelease.yaml", "infrastructure/networking/external-dns/externalsecret.yaml"], ["external-secrets"], "app"),
    ("networking", "gateway", "gateway", B, ["infrastructure/networking/cilium/gateway/crds.yaml", "infrastructure/networking/cilium/gateway/gateway.yaml", "infrastructure/networking/cilium/gateway/certificate.yaml"], ["cilium-config", "cert-manager"], "app"),
    ("cert-manager", "cert-manager", "cert-manager", B, ["bases/cert-manager/helmrelease.yaml", "infrastructure/security/cert-manager/externalsecret.yaml", "infrastructure/security/cert-manager/clusterissuer.yaml"], ["external-secrets"], "app"),
    ("external-secrets", "external-secrets", "external-secrets", B, ["bases/external-secrets/helmrelease.yaml", "bases/external-secrets/onepassword-connect.yaml", "infrastructure/security/external-secrets/clustersecretstore.yaml"], [], "app"),
    ("openebs", "openebs", "openebs", B, ["bases/openebs/helmrelease.yaml", "infrastructure/storage/openebs/storageclass.yaml"], [], "app"),
    ("volsync-system", "volsync", "volsync", B, ["bases/volsync/helmrelease.yaml", "infrastructure/backup/volsync/externalsecret-minio.yaml", "infrastructure/backup/volsync/replicationsource-test.yaml"], ["snapshot-controller", "external-secrets"], "app"),
    ("velero", "velero", "velero", B, ["bases/velero/helmrelease.yaml", "infrastructure/backup/velero/externalsecret-minio.yaml", "infrastructure/backup/velero/schedule.yaml"], ["external-secrets"], "app"),
    ("rook-ceph", "rook-ceph", "rook-ceph", I, ["bases/rook-ceph-operator/helmrelease.yaml"], [], "app"),
    ("rook-ceph", "rook-ceph", "rook-ceph-cluster", I, ["bases/rook-ceph-cluster/cephcluster.yaml", "bases/rook-ceph-cluster/cephblockpool.yaml", "bases/rook-ceph-cluster/storageclass-rbd.yaml", "bases/rook-ceph-cluster/volumesnapshotclass.yaml", "infrastructure/storage/rook-ceph/cluster/global-services.yaml"], ["rook-ceph", "snapshot-controller"], "cluster"),
    ("cnpg-system", "cloudnative-pg", "cloudnative-pg", I, ["bases/cloudnative-pg/helmrelease.yaml"], [], "app"),
    ("databases", "postgres-shared", "postgres-shared", I, ["workloads/platform/databases/cloudnative-pg/cluster/cluster.yaml", "workloads/platform/databases/cloudnative-pg/cluster/externalsecret.yaml", "workloads/platform/databases/cloudnative-pg/cluster/scheduledbackup.yaml", "workloads/platform/databases/cloudnative-pg/cluster/service-global.yaml", "workloads/platform/databases/cloudnative-pg/cluster/serviceexport.yaml", "workloads/platform/databases/cloudnative-pg/databases.yaml"], ["cloudnative-pg", "openebs", "external-secrets"], "app"),
    ("databases", "dragonfly", "dragonfly", I, ["workloads/platform/databases/dragonfly/helmrelease.yaml", "@oci:dragonfly-operator", "workloads/platform/databases/dragonfly/dragonfly.yaml", "workloads/platform/databases/dragonfly/externalsecret.yaml", "workloads/platform/databases/dragonfly/serviceexport.yaml"], ["openebs", "external-secrets"], "app"),
    ("observability", "fluent-bit", "fluent-bit", B, ["bases/fluent-bit/helmrelease.yaml", "workloads/platform/observability/fluent-bit/externalsecret.yaml"], ["external-secrets"], "app"),
    ("observability", "victoria-metrics", "victoria-metrics", I, ["bases/victoria-metrics-stack/helmrelease.yaml", "workloads/platform/observability/victoria-metrics/externalsecret.yaml", "workloads/platform/observability/victoria-metrics/grafana-oidc.yaml", "workloads/platform/observability/victoria-metrics/httproute.yaml"], ["rook-ceph-cluster", "postgres-shared", "gateway"], "app"),
    ("observability", "victoria-logs", "victoria-logs", I, ["bases/victoria-logs/helmrelease.yaml", "bases/victoria-logs/vmauth-helmrelease.yaml", "workloads/platform/observability/victoria-logs/externalsecret-vmauth.yaml", "workloads/platform/observability/victoria-logs/grafana-datasource.yaml", "workloads/platform/observability/victoria-logs/serviceexport.yaml"], ["rook-ceph-cluster"], "app"),
    ("auth", "keycloak", "keycloak-operator", I, ["bases/keycloak-operator/helmrelease.yaml", "@oci:app-template", "bases/keycloak-operator/rbac.yaml", "bases/keycloak-operator/crds.yaml"], [], "operator"),
    ("auth", "keycloak", "keycloak", I, ["workloads/platform/auth/keycloak/instance/keycloak.yaml", "workloads/platform/auth/keycloak/instance/externalsecret.yaml", "workloads/platform/auth/keycloak/instance/realm-import.yaml", "workloads/platform/auth/keycloak/instance/httproute.yaml", "workloads/platform/auth/keycloak/instance/certificate.yaml"], ["keycloak-operator", "postgres-shared", "gateway"], "app"),
    ("mesh-demo", "echo", "echo", I, ["workloads/platform/mesh-demo/echo.yaml"], ["cilium-config"], "app"),
    ("ceph-csi-rbd", "ceph-csi-rbd", "ceph-csi-rbd", A, ["workloads/tenants/gitlab/remote-storageclass.yaml"], ["external-secrets"], "app"),
    ("gitlab", "gitlab", "gitlab", A, ["workloads/tenants/gitlab/helmrelease.yaml", "workloads/tenants/gitlab/externalsecret.yaml", "workloads/tenants/gitlab/externalsecret-db.yaml", "workloads/tenants/gitlab/oidc-config.yaml", "workloads/tenants/gitlab/httproute.yaml"], ["ceph-csi-rbd", "gateway"], "app"),
    ("harbor", "harbor", "harbor", A, ["workloads/tenants/harbor/helmrelease.yaml", "workloads/tenants/harbor/externalsecret.yaml", "workloads/tenants/harbor/oidc-config.yaml", "workloads/tenants/harbor/httproute.yaml"], ["gateway"], "app"),
    ("mattermost-operator", "mattermost-operator", "mattermost-operator", A, ["bases/mattermost-operator/helmrelease.yaml"], [], "app"),
    ("mattermost", "mattermost", "mattermost", A, ["workloads/tenants/mattermost/instance/mattermost.yaml", "workloads/tenants/mattermost/instance/externalsecret.yaml", "workloads/tenants/mattermost/instance/httproute.yaml"], ["mattermost-operator", "gateway"], "app"),
]

NAMESPACE_FILES = {
    "networking": "infrastructure/networking/namespace.yaml",
    "cert-manager": "infrastructure/security/cert-manager/namespace.yaml",
    "external-secrets": "infrastructure/security/external-secrets/namespace.yaml",
    "openebs": "infrastructure/storage/openebs/namespace.yaml",
    "volsync-system": "infrastructure/backup/volsync/namespace.yaml",
    "velero": "infrastructure/backup/velero/namespace.yaml",
    "rook-ceph": "infrastructure/storage/rook-ceph/namespace.yaml",
    "cnpg-system": "workloads/platform/databases/cloudnative-pg/operator/namespace.yaml",
    "databases": "workloads/platform/databases/namespace.yaml",
    "observability": "workloads/platform/observability/fluent-bit/namespace.yaml",
    "auth": "workloads/platform/auth/namespace.yaml",
    "mesh-demo": "workloads/platform/mesh-demo/namespace.yaml",
    "gitlab": "workloads/tenants/gitlab/namespace.yaml",
    "harbor": "workloads/tenants/harbor/namespace.yaml",
    "mattermost-operator": "workloads/tenants/mattermost/operator/namespace.yaml",
    "mattermost": "workloads/tenants/mattermost/instance/namespace.yaml",
}

# Variables the entry Kustomizations of fixtures/gitops set inline; here they join
# cluster-settings, which every Flux Kustomization reads through substituteFrom.
CILIUM_OCI = """\
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: cilium
spec:
  interval: 2h
  url: oci://ghcr.io/home-operations/charts-mirror/cilium
  ref:
    tag: 1.18.4
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
"""

BGP = """\
---
# BGP control plane v2: one instance per node with the upstream router as its
# only peer; pod CIDRs and LoadBalancer IPs (LB-IPAM) are advertised.
apiVersion: cilium.io/v2
kind: CiliumBGPClusterConfig
metadata:
  name: bgp
spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/os: linux
  bgpInstances:
    - name: ${CLUSTER}
      localASN: ${CILIUM_BGP_LOCAL_ASN}
      peers:
        - name: upstream
          peerASN: ${CILIUM_BGP_PEER_ASN}
          peerAddress: ${CILIUM_BGP_PEER_IP}
          peerConfigRef:
            name: upstream
---
apiVersion: cilium.io/v2
kind: CiliumBGPPeerConfig
metadata:
  name: upstream
spec:
  timers:
    connectRetryTimeSeconds: 120
    holdTimeSeconds: 90
    keepAliveTimeSeconds: 30
  gracefulRestart:
    enabled: true
    restartTimeSeconds: 120
  families:
    - afi: ipv4
      safi: unicast
      advertisements:
        matchLabels:
          advertise: bgp
---
apiVersion: cilium.io/v2
kind: CiliumBGPAdvertisement
metadata:
  name: bgp
  labels:
    advertise: bgp
spec:
  advertisements:
    - advertisementType: PodCIDR
    - advertisementType: Service
      service:
        addresses:
          - LoadBalancerIP
      selector:
        matchExpressions:
          - key: somekey
            operator: NotIn
            values: ["never-used-value"]
"""

KZ = "---\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def oci_source(name):
    """The OCIRepository `name` of bases/sources, without its namespace (it lives beside the HelmRelease)."""
    for doc in read(f"{K}/bases/sources/ocirepositories.yaml").split("\n---\n"):
        if re.search(rf"^  name: {re.escape(name)}$", doc, re.M):
            doc = doc.strip("-\n")
            doc = re.sub(r"^  namespace: flux-system\n", "", doc, flags=re.M)
            doc = "\n".join(line for line in doc.splitlines() if line.startswith(("apiVersion", "kind", "metadata", "spec", " ")))
            return "---\n" + doc + "\n"
    raise SystemExit(f"no OCIRepository {name}")


def helmrelease(text):
    """chart.spec → chartRef for Cilium; chartRef namespaces dropped (the source is beside it)."""
    text = re.sub(r"^  chart:\n    spec:\n      chart: cilium\n(?:      .*\n)+", "  chartRef:\n    kind: OCIRepository\n    name: cilium\n", text, flags=re.M)
    text = re.sub(r"(  chartRef:\n    kind: OCIRepository\n    name: [a-z-]+\n)    namespace: flux-system\n", r"\1", text)
    # Cilium's comments name where its configuration lives.
    if text.startswith("---\n# Cilium CNI:"):
        text = "---\n# Cilium CNI, shared by both clusters; per-cluster values come from cluster-settings.\n# BGP peering, LB-IPAM pool, GatewayClass and the ClusterMesh Secret are in ../config.\n" + text[text.index("apiVersion:"):]
    text = text.replace("(peering configured by CiliumBGPPeeringPolicy)", "(CiliumBGPClusterConfig, CiliumBGPPeerConfig, CiliumBGPAdvertisement in ../config)")
    text = text.replace("infrastructure/networking/cilium/clustermesh/externalsecret.yaml", "../config/externalsecret.yaml")
    return text


def namespaces(texts):
    out = set()
    for t in texts:
        for d in yaml.safe_load_all(t):
            if d and (d.get("metadata") or {}).get("namespace"):
                out.add(d["metadata"]["namespace"])
    return out


def main():
    if os.path.isdir(f"{DST}/kubernetes"):
        shutil.rmtree(f"{DST}/kubernetes")
    for d in ["talos", "scripts", ".taskfiles"]:
        shutil.rmtree(f"{DST}/{d}", ignore_errors=True)
        shutil.copytree(f"{SRC}/{d}", f"{DST}/{d}")
    for f in ["Taskfile.yaml", ".gitignore"]:
        shutil.copy(f"{SRC}/{f}", f"{DST}/{f}")
    out = f"{DST}/kubernetes"
    per_ns = {}
    moved = {}  # old path (below kubernetes/) -> new path, for the comments that name files
    for ns, app, ks, clusters, files, deps, sub in APPS:
        folder = f"{out}/apps/{ns}/{app}"
        texts = {}
        for f in files:
            if f == "@cilium-oci":
                texts["ocirepository.yaml"] = CILIUM_OCI
            elif f.startswith("@oci:"):
                texts["ocirepository.yaml"] = oci_source(f[5:])
            elif f == "@bgp":
                texts["bgp.yaml"] = BGP
            else:
                name = os.path.basename(f)
                if name in texts:
                    name = f.split("/")[-2] + "-" + name
                text = read(f"{K}/{f}")
                moved[f] = f"kubernetes/apps/{ns}/{app}/{sub}/{name}"
                texts[name] = helmrelease(text) if "HelmRelease" in text else text
        for name, text in texts.items():
            write(f"{folder}/{sub}/{name}", text)
        resources = "".join(f"  - ./{n}\n" for n in texts)
        comp = ""
        if any("kind: HelmRelease" in t for t in texts.values()):
            comp = "components:\n  - ../../../../components/helm-remediation\n"
        write(f"{folder}/{sub}/kustomization.yaml", KZ + "resources:\n" + resources + comp)
        nss = namespaces(texts.values())
        target = f"  targetNamespace: {ns}\n" if nss <= {ns} else ""
        depends = "".join(f"    - name: {d}\n" for d in deps)
        doc = (
            "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
            f"metadata:\n  name: {ks}\n  namespace: flux-system\nspec:\n"
            + (f"  dependsOn:\n{depends}" if deps else "")
            + f"  interval: 1h\n  path: ./kubernetes/apps/{ns}/{app}/{sub}\n  prune: true\n  wait: true\n"
            "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
            + target
        )
        ks_file = f"{folder}/ks.yaml"
        previous = read(ks_file) if os.path.exists(ks_file) else ""
        write(ks_file, previous + doc)
        per_ns.setdefault(ns, {}).setdefault(app, set()).update(clusters)

    # Per namespace: the namespace and the ks.yaml of components both clusters run; a
    # cluster-only set of components of a namespace is a kustomize Component of its own.
    for ns, apps in per_ns.items():
        both = [a for a, c in apps.items() if set(c) == set(B)]
        only = {c: [a for a, cs in apps.items() if set(cs) == {c}] for c in B}
        ns_res = ([f"  - ./namespace.yaml\n"] if ns in NAMESPACE_FILES else []) + [f"  - ./{a}/ks.yaml\n" for a in both]
        if ns in NAMESPACE_FILES:
            write(f"{out}/apps/{ns}/namespace.yaml", read(f"{K}/{NAMESPACE_FILES[ns]}"))
        if both or all(not v for v in only.values()):
            pass
        if both:
            write(f"{out}/apps/{ns}/kustomization.yaml", KZ + "resources:\n" + "".join(ns_res))
        for c, lst in only.items():
            if not lst:
                continue
            if both:
                # e.g. observability: fluent-bit on both clusters, the metrics/logs stack on infra only
                write(f"{out}/apps/{ns}/{c}-only/kustomization.yaml",
                      "---\napiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n" + "".join(f"  - ../{a}/ks.yaml\n" for a in lst))
            else:
                write(f"{out}/apps/{ns}/kustomization.yaml", KZ + "resources:\n" + "".join(ns_res) + "".join(f"  - ./{a}/ks.yaml\n" for a in lst))

    # Comments naming a moved file name its new place.
    for dirpath, _, names in os.walk(f"{out}/apps"):
        for n in names:
            path = f"{dirpath}/{n}"
            lines = read(path).split("\n")
            for i, line in enumerate(lines):
                if line.lstrip().startswith("#"):
                    for old, new in moved.items():
                        line = line.replace(f"kubernetes/{old}", new).replace(old, new)
                    lines[i] = line
            write(path, "\n".join(lines))

    write(f"{out}/components/helm-remediation/kustomization.yaml", """\
---
# Install and upgrade remediation for every HelmRelease of the kustomization that
# uses this component.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - target:
      group: helm.toolkit.fluxcd.io
      kind: HelmRelease
    patch: |-
      apiVersion: helm.toolkit.fluxcd.io/v2
      kind: HelmRelease
      metadata:
        name: _
      spec:
        install:
          remediation:
            retries: -1
        upgrade:
          cleanupOnFail: true
          remediation:
            retries: 3
""")
    # Shared HelmRepositories (OCI sources live beside their HelmRelease).
    write(f"{out}/flux/repositories/helmrepositories.yaml", read(f"{K}/bases/sources/helmrepositories.yaml").replace("\n---\n# Charts", "\n# Charts"))
    write(f"{out}/flux/repositories/kustomization.yaml", KZ + "resources:\n  - ./helmrepositories.yaml\n")

    for cluster in B:
        cdir = f"{out}/clusters/{cluster}"
        shutil.copytree(f"{K}/clusters/{cluster}/flux-system", f"{cdir}/flux-system")
        infra = [d for d in yaml.safe_load_all(read(f"{K}/clusters/{cluster}/infrastructure.yaml")) if d]
        inline = infra[0]["spec"]["postBuild"]["substitute"]
        settings = read(f"{K}/clusters/{cluster}/cluster-settings.yaml").rstrip("\n") + "\n"
        settings = f"---\n# Every variable of the {cluster} cluster. Read by every Flux Kustomization of the\n# cluster through postBuild.substituteFrom, together with the optional\n# (uncommitted) Secret cluster-secrets.\n" + settings[settings.index("apiVersion:"):]
        settings += "  # cluster identity, networks, ClusterMesh, BGP and LB-IPAM\n"
        for k, v in inline.items():
            settings += f"  {k}: \"{v}\"\n"
        settings += f"  # BGPv2 peerAddress is an address, not a prefix\n  CILIUM_BGP_PEER_IP: \"{inline['CILIUM_BGP_PEER_ADDRESS'].split('/')[0]}\"\n"
        write(f"{cdir}/cluster-settings.yaml", settings)
        write(f"{cdir}/kustomization.yaml", KZ + "resources:\n  - ./flux-system\n  - ./cluster-settings.yaml\n  - ./cluster-apps.yaml\n")
        write(f"{cdir}/cluster-apps.yaml", f"""\
---
# Every component of this cluster: the ks.yaml files listed by ./apps. Each one
# reads the cluster's variables through postBuild.substituteFrom (patched in below).
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cluster-apps
  namespace: flux-system
spec:
  interval: 1h
  path: ./kubernetes/clusters/{cluster}/apps
  prune: true
  wait: false
  sourceRef:
    kind: GitRepository
    name: flux-system
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: cluster-settings
      - kind: Secret
        name: cluster-secrets
        optional: true
  patches:
    - target:
        group: kustomize.toolkit.fluxcd.io
        kind: Kustomization
      patch: |-
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: _
        spec:
          postBuild:
            substituteFrom:
              - kind: ConfigMap
                name: cluster-settings
              - kind: Secret
                name: cluster-secrets
                optional: true
""")
        dirs, comps = [], []
        for ns, apps in per_ns.items():
            here = [a for a, c in apps.items() if cluster in c]
            if not here:
                continue
            both = [a for a, c in apps.items() if set(c) == set(B)]
            dirs.append(ns)
            if both and any(set(apps[a]) == {cluster} for a in here):
                comps.append(f"{ns}/{cluster}-only")
        text = KZ + "resources:\n  - ../../../flux/repositories\n" + "".join(f"  - ../../../apps/{d}\n" for d in dirs)
        if comps:
            text += "components:\n" + "".join(f"  - ../../../apps/{c}\n" for c in comps)
        write(f"{cdir}/apps/kustomization.yaml", text)

    # Installed before Flux by the bootstrap task (helmfile, read statically by the harness):
    # the CNI and DNS the cluster needs to run Flux at all, and cert-manager for its CRDs.
    # Flux's HelmReleases of the same charts take them over afterwards.
    write(f"{DST}/bootstrap/helmfile.d/01-apps.yaml.gotmpl", """\
---
# yaml-language-server: $schema=https://json.schemastore.org/helmfile
helmDefaults:
  cleanupOnFail: true
  wait: true
  waitForJobs: true

releases:
  - name: cilium
    namespace: kube-system
    chart: oci://ghcr.io/home-operations/charts-mirror/cilium
    version: 1.18.4
    values: ['{{ requiredEnv "ROOT_DIR" }}/bootstrap/values/cilium.yaml']

  - name: coredns
    namespace: kube-system
    chart: oci://ghcr.io/coredns/charts/coredns
    version: 1.46.2
    needs: ['kube-system/cilium']

  - name: cert-manager
    namespace: cert-manager
    chart: oci://quay.io/jetstack/charts/cert-manager
    version: v1.21.1
    values:
      - crds:
          enabled: true
    needs: ['kube-system/coredns']
""")
    write(f"{DST}/bootstrap/values/cilium.yaml", "---\n# values for the bootstrap install; Flux's HelmRelease takes over with its own\nipam:\n  mode: kubernetes\nkubeProxyReplacement: true\n")


if __name__ == "__main__":
    main()
