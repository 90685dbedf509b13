//! Where the repository layer renders a repository differently from Flux.
//!
//! ```text
//! cargo run --example flux_oracle -- REPO [CLUSTER...]
//! ```
//!
//! For each cluster of REPO (its `clusters/<name>/` directories, or those named), runs
//! `$PA_CACHE/bin/flux-render` (kustomize-controller's generator and substitution; build
//! it with `sim/build.sh flux-render`) and prints every object or field where
//! `GitopsRepo::render` disagrees, then a count per cluster; then the rendering's own
//! findings (what the repository layer reports as keeping Flux from applying the tree:
//! dangling paths, unknown dependsOn, missing substituteFrom sources, unresolved
//! variables, namespaced objects without a namespace) and its warnings. Exit 1 when any
//! differ.

#[path = "../tests/support/oracle.rs"]
mod oracle;

use platform_acceptance::repo::GitopsRepo;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first().filter(|a| !a.starts_with('-')) else {
        eprintln!("usage: flux_oracle REPO [CLUSTER...]");
        std::process::exit(2);
    };
    let repo = GitopsRepo::load(root).unwrap_or_else(|e| {
        eprintln!("flux_oracle: {e}");
        std::process::exit(2);
    });
    let clusters: Vec<String> = if args.len() > 1 { args[1..].to_vec() } else { repo.clusters().to_vec() };
    let mut total = 0;
    for cluster in &clusters {
        let diffs = oracle::differences(std::path::Path::new(root), std::path::Path::new(root), cluster);
        for d in &diffs {
            println!("{cluster}: {d}");
        }
        println!("{cluster}: {} difference(s)", diffs.len());
        total += diffs.len();
        match repo.render(cluster) {
            Ok(r) => {
                for p in &r.problems {
                    println!("{cluster}: finding ({}): {}", p.category, p.finding);
                }
                println!("{cluster}: {} object(s) in {} Kustomization(s), {} finding(s) of the repository layer", r.objects.len(), r.kustomizations.len(), r.problems.len());
            }
            Err(e) => println!("{cluster}: the repository layer cannot render it: {e}"),
        }
    }
    for w in repo.warnings() {
        println!("warning: {w}");
    }
    std::process::exit(i32::from(total > 0));
}
