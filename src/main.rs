//! `platform-acceptance`: see `platform-acceptance --help`.

fn main() -> std::process::ExitCode {
    platform_acceptance::cli::main()
}
