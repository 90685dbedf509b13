//! EPIC-9: GitLab, Harbor and Mattermost on the apps cluster.
//!
//! These checks prove that the repository declares GitLab, Harbor and Mattermost with their
//! databases on the shared PostgreSQL, their caches on Dragonfly, object storage on MinIO (or
//! Ceph RGW for Harbor) and sign-in through Keycloak; and that on the apps cluster GitLab,
//! Harbor, the Mattermost operator and its instance are deployed and ready and GitLab's
//! sign-in page answers through its HTTPRoute and the Gateway. Using the applications (a repository and pipeline,
//! an image push and pull, a message) is left to a person: see the reasons.
//!
//! `repo` reads the GitOps repository, `live` the Kubernetes API. Citations `§n [ID]` refer
//! to docs/reference/components.md.

mod live;
mod repo;

use crate::check::Check;

const GITLAB_FILES: [&str; 3] = [
    "kubernetes/workloads/tenants/gitlab/kustomization.yaml",
    "kubernetes/workloads/tenants/gitlab/helmrelease.yaml",
    "kubernetes/workloads/tenants/gitlab/externalsecret.yaml",
];
const HARBOR_FILES: [&str; 4] = [
    "kubernetes/workloads/tenants/harbor/kustomization.yaml",
    "kubernetes/workloads/tenants/harbor/helmrelease.yaml",
    "kubernetes/workloads/tenants/harbor/externalsecret.yaml",
    "kubernetes/workloads/tenants/harbor/httproute.yaml",
];
const GITLAB_PG: &str = "Connected to shared PostgreSQL on infra (via ClusterMesh)";

pub fn checks() -> Vec<Check> {
    vec![
        // 9.1
        Check::repo("9.1", "GitLab manifests created", "gitlab_manifests_created", repo::gitlab_manifests_created),
        // The text names infra (where PostgreSQL runs); the criterion is about GitLab, which runs on apps.
        Check::repo("9.1", GITLAB_PG, "gitlab_uses_shared_postgres", repo::gitlab_uses_shared_postgres).only("apps"),
        Check::repo("9.1", "Connected to Dragonfly (via ClusterMesh)", "gitlab_uses_dragonfly", repo::gitlab_uses_dragonfly),
        Check::repo("9.1", "MinIO object storage configured", "gitlab_object_storage_minio", repo::gitlab_object_storage_minio),
        Check::cluster("9.1", "GitLab deployed on apps cluster", "gitlab_deployed", live::gitlab_deployed),
        Check::data_plane("9.1", "GitLab accessible via HTTPRoute", "gitlab_reachable", live::gitlab_reachable),
        Check::repo("9.1", "SSO configured (pending EPIC-8)", "gitlab_sso_configured", repo::gitlab_sso_configured),
        Check::manual(
            "9.1",
            "Can create repo and run pipeline",
            "Needs a GitLab API token (the root password lives in 1Password; the harness holds none) and writes to GitLab's \
             database and Gitaly (a project, a commit, a pipeline) outside any disposable namespace; a pipeline also needs a \
             GitLab Runner, which the plan deploys only after GitLab is operational (gitlab-runner.install: false). A person \
             creates a test project at https://gitlab.<domain>, pushes a .gitlab-ci.yml and sees the pipeline succeed. \
             Deployment and routing are proven by 9.1.5 and 9.1.6.",
        ),
        // 9.2
        Check::repo("9.2", "Harbor manifests created", "harbor_manifests_created", repo::harbor_manifests_created),
        Check::repo("9.2", "Connected to shared PostgreSQL", "harbor_uses_shared_postgres", repo::harbor_uses_shared_postgres),
        Check::repo("9.2", "Connected to Dragonfly (Redis)", "harbor_uses_dragonfly", repo::harbor_uses_dragonfly),
        Check::repo("9.2", "Object storage configured (MinIO or Ceph RGW)", "harbor_object_storage", repo::harbor_object_storage),
        Check::cluster("9.2", "Deployed on apps cluster", "harbor_deployed", live::harbor_deployed),
        Check::repo("9.2", "SSO configured", "harbor_sso_configured", repo::harbor_sso_configured),
        Check::manual(
            "9.2",
            "Can push/pull images",
            "A push needs registry credentials (a Harbor user or robot account; the admin password lives in 1Password) and \
             writes an artifact into a Harbor project, i.e. into Harbor's database and object storage outside any disposable \
             namespace. A person runs docker login harbor.<domain>, pushes and pulls a test image in a scratch project and \
             deletes it. Deployment, database, Redis and storage wiring are proven by 9.2.1-9.2.5.",
        ),
        // 9.3
        Check::cluster("9.3", "Mattermost operator deployed", "mattermost_operator_deployed", live::mattermost_operator_deployed),
        Check::repo("9.3", "Mattermost instance created", "mattermost_instance_created", repo::mattermost_instance_created),
        Check::repo("9.3", "Connected to shared PostgreSQL", "mattermost_uses_shared_postgres", repo::mattermost_uses_shared_postgres),
        Check::cluster("9.3", "Deployed on apps cluster", "mattermost_deployed", live::mattermost_deployed),
        Check::repo("9.3", "SSO configured", "mattermost_sso_configured", repo::mattermost_sso_configured),
        Check::manual(
            "9.3",
            "Can send messages",
            "Posting needs a Mattermost user or bot token (none exists before a person creates the first team and admin) and \
             writes a post into a team channel in the shared PostgreSQL database outside any disposable namespace. A person \
             signs in at https://mattermost.<domain>, posts in a channel and sees it delivered to a second session. \
             Deployment is proven by 9.3.4.",
        ),
    ]
}
