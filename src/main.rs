//! The `mirrorer` binary: parse the command line, run it, exit with its code.
//! Everything lives in the library (`mirrorer::cli::run`) so tests can call it.

fn main() -> std::process::ExitCode {
    mirrorer::cli::run(std::env::args_os())
}
