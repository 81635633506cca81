//! `warden`: run WebAssembly workloads that must be trusted.
//!
//! This is the command-line edge: it parses flags, resolves the policy,
//! and turns every failure into one line and a documented exit code
//! (docs/cli.md).

mod attest;
mod bundle;
mod cc;
mod component;
mod deploy;
mod flags;
mod inspect;
mod kv;
mod run;
mod serve;
mod state;
mod verify;
mod workload;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Run WebAssembly workloads that must be trusted"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a WASI preview1 module, or a bundle, as a sandboxed cage
    Run(Box<run::RunArgs>),
    /// Pack code, its policy and its virtual mounts into one sealed bundle
    Bundle(Box<bundle::BundleArgs>),
    /// Show what a module, component or bundle imports, its policy and digest
    Inspect(inspect::InspectArgs),
    /// Compile a module ahead of time to native code
    Compile(run::CompileArgs),
    /// Compile a POSIX C program into a cage-ready module
    Cc(cc::CcArgs),
    /// Look into and change the sealed store
    Kv(kv::KvArgs),
    /// Serve wasi:http apps: a manifest of many, or one component
    Serve(Box<serve::ServeArgs>),
    /// Publish a serve manifest in etcd for every `warden serve` node
    Deploy(deploy::DeployArgs),
    /// Print evidence of a workload, or the tree of a serve manifest's apps
    Attest(Box<attest::AttestArgs>),
    /// Check an attested server, or saved evidence (exit 0 verified, 1 refused)
    Verify(Box<verify::VerifyArgs>),
}

/// Exit code for bad input: nothing ran.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a failure of warden itself.
pub const EXIT_HOST_ERROR: u8 = 125;

/// A failure at the CLI edge: what to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn bad_input(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: EXIT_BAD_INPUT,
            message: message.to_string(),
        }
    }

    pub fn host(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: EXIT_HOST_ERROR,
            message: message.to_string(),
        }
    }
}

/// Panics are bugs: say so in one line, without a backtrace. Panics that
/// the sealed store turns into errors (a damaged database) stay quiet.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if warden_seal::backend::redb::in_guarded_call() {
            return;
        }
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("warden: internal error: {what}{at} (this is a bug in warden)");
    }));
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || matches!(
                    e.kind(),
                    ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                )
            {
                e.exit();
            }
            // One line, not clap's usage block.
            let text = e.to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = first.trim_start_matches("error: ");
            eprintln!("warden: error: {first} (see `warden --help`)");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Bundle(args) => bundle::run(*args),
        Command::Inspect(args) => inspect::run(args),
        Command::Compile(args) => run::compile(args),
        Command::Cc(args) => cc::run(args).map_err(|e| Failure::bad_input(format!("{e:#}"))),
        Command::Serve(args) => serve::run(*args),
        Command::Deploy(args) => deploy::run(args),
        Command::Attest(args) => attest::run(*args),
        Command::Verify(args) => verify::run(*args),
        Command::Kv(args) => kv::run(args).map(|code| code as u8).map_err(|e| Failure {
            code: 1,
            message: format!("{e:#}"),
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("warden: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
