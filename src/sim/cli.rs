//! `platform-acceptance sim ...`: the command line of the local simulation.

use clap::Subcommand;

use super::SimConfig;

macro_rules! env_help {
    () => {
        "Environment:\n  \
PA_CACHE          binaries (bin/) and CRDs (crds/) from `make sim-build` [default: /var/cache/platform-acceptance]\n  \
PA_SIM_STATE      state directory: kubeconfig, logs, pids, etcd data [default: $PA_CACHE/sim]\n  \
PA_SIM_REPO       GitOps repository giving cluster names and CIDRs [default: the one `sim up --repo` gave, else fixtures/gitops]\n  \
PA_SIM_PORT_BASE  first loopback port [default: 32100; infra uses base+0..8, apps base+100..108]"
    };
}
const ENV_HELP: &str = env_help!();

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum SimCommand {
    /// Start both simulated clusters (idempotent), install the CRDs, start the data services and apply a scenario.
    #[command(
        long_about = "Start the local two-cluster simulation: per cluster (infra, apps) an etcd, kube-apiserver, \
kube-controller-manager, kube-scheduler and kwok, the nodes of the repository's Talos files (Ready, with podCIDRs from the \
repository's POD_CIDR), every CRD from $PA_CACHE/crds installed and Established, then the real cert-manager controller and \
Velero server. Then the data services are started and the scenario is applied.\n\n\
Everything runs in a network namespace of its own: the repository's site network (e.g. 10.25.11.0/24) exists only there, \
nothing inside can reach any other address, and the host reaches the API servers and data services through forwards on \
127.0.0.1 (the ports below). Needs root (or CAP_SYS_ADMIN) and `ip` (iproute2).\n\n\
Idempotent: if everything already runs and is healthy it returns within a second; a crashed component is reported with \
the tail of its log and its cluster restarted. Processes keep running after the command returns; stop them with \
`sim down`. Needs the binaries from `make sim-build` (= sim/build.sh && sim/crds.sh).",
        after_help = concat!(
            "Examples:\n  \
platform-acceptance sim up\n  \
platform-acceptance sim up --scenario healthy\n  \
platform-acceptance sim up --repo fixtures/gitops-community   # another repository's clusters, reconciled by Flux\n  \
KUBECONFIG=/var/cache/platform-acceptance/sim/kubeconfig kubectl --context apps get nodes\n  \
platform-acceptance sim status && platform-acceptance sim down\n\n",
        env_help!()
    ))]
    Up {
        /// Scenario to apply once the clusters are up (see `sim scenario list`).
        #[arg(long, default_value = "healthy")]
        scenario: String,
        /// The GitOps repository to simulate: cluster names, CIDRs and nodes from it, and the
        /// real Flux reconciles it (its commit plus the simulation overlay). Kept for the later
        /// `sim` commands and `run --sim` until `sim down` [default: $PA_SIM_REPO, else fixtures/gitops].
        #[arg(long, value_name = "PATH")]
        repo: Option<std::path::PathBuf>,
    },
    /// Stop every process of the simulation and remove its state directory.
    #[command(
        after_help = "Examples:\n  platform-acceptance sim down\n  PA_SIM_STATE=/tmp/sim2 platform-acceptance sim down"
    )]
    Down,
    /// Show each component's pid, ports, memory and health, and each node.
    #[command(
        after_help = "Examples:\n  platform-acceptance sim status\n\nExit status 1 if any component or node is not healthy."
    )]
    Status,
    /// Apply or list scenarios (states of the simulated platform).
    Scenario {
        #[command(subcommand)]
        cmd: ScenarioCommand,
    },
    /// The simulation's network namespace and its host forwards (src/sim/network.rs); started by `sim up`.
    #[command(hide = true)]
    Network {
        /// HOST_PORT=ADDRESS:PORT: 127.0.0.1:HOST_PORT on the host reaches ADDRESS:PORT inside.
        #[arg(long = "forward", value_parser = super::network::parse_forward)]
        forwards: Vec<super::network::Forward>,
        /// A network made local on the namespace's loopback (CIDR).
        #[arg(long = "network")]
        networks: Vec<ipnet::IpNet>,
        /// A host address added to the namespace's loopback.
        #[arg(long = "address")]
        addresses: Vec<std::net::IpAddr>,
    },
    /// The later breaks of a scenario (src/sim/scenario/later.rs); started by `sim scenario apply`.
    #[command(hide = true)]
    Later {
        /// Scenario name.
        scenario: String,
    },
    /// The relay container's stand-in (src/sim/relay.rs): one SOCKS5 connection on
    /// stdin/stdout; run by kwok for port-forwards to a relay pod.
    #[command(hide = true)]
    Relay {
        /// The cluster whose network the connection enters.
        #[arg(long)]
        cluster: String,
        /// The simulation's state directory.
        #[arg(long)]
        state_dir: std::path::PathBuf,
    },
    /// The stand-in volume provisioner (src/sim/provisioner.rs); started by the data services.
    #[command(hide = true)]
    Provisioner {
        /// Modification time of the binary that started it (restarts it after a rebuild).
        #[arg(long, default_value = "")]
        build: String,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ScenarioCommand {
    /// Apply a scenario to the running simulation (starts the data services if needed).
    #[command(after_help = "Examples:\n  platform-acceptance sim scenario apply healthy")]
    Apply {
        /// Scenario name (see `sim scenario list`).
        name: String,
    },
    /// List the scenarios.
    List,
}

/// Help text for the environment variables (the `after_help` of the top-level `sim` command).
pub fn env_help() -> &'static str {
    ENV_HELP
}

/// Runs a `sim` subcommand with [`SimConfig::from_env`].
pub async fn run(cmd: SimCommand) -> anyhow::Result<()> {
    let cfg = SimConfig::from_env();
    match cmd {
        SimCommand::Up { scenario, repo } => {
            let cfg = match repo {
                Some(repo) => cfg.simulating(&repo)?,
                None => cfg,
            };
            let t = std::time::Instant::now();
            super::up_with(&cfg, super::scenario::apply(&cfg, &scenario)).await?;
            println!("sim up: scenario {scenario} applied on a ready simulation {:.1}s after the start", t.elapsed().as_secs_f64());
        }
        SimCommand::Down => super::down(&cfg).await?,
        SimCommand::Status => {
            let st = super::status(&cfg).await?;
            println!("{st}");
            if !st.is_healthy() {
                anyhow::bail!("the simulation is not (fully) up; run `platform-acceptance sim up`");
            }
        }
        SimCommand::Scenario { cmd: ScenarioCommand::Apply { name } } => {
            let _ = super::data::start(&cfg).await?;
            super::scenario::apply(&cfg, &name).await?;
        }
        SimCommand::Relay { cluster, state_dir } => {
            let cfg = super::SimConfig { state_dir: state_dir.clone(), ..cfg };
            super::relay::serve_stdio(&cfg, &cluster).await?
        }
        SimCommand::Provisioner { .. } => super::provisioner::run(&cfg).await?,
        SimCommand::Later { scenario } => super::scenario::run_later(&cfg, &scenario).await?,
        SimCommand::Network { forwards, networks, addresses } => {
            tokio::task::spawn_blocking(move || super::network::serve(&cfg.state_dir, &forwards, &networks, &addresses))
                .await??
        }
        SimCommand::Scenario { cmd: ScenarioCommand::List } => {
            for name in super::scenario::list() {
                println!("{name}");
            }
        }
    }
    Ok(())
}
