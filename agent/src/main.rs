//! `keel`: dispatches the command line to the commands; all work lives in `commands` and in the
//! `keel-installer` library.

mod cli;
mod commands;
mod disk_replace;
mod cluster_step;
mod first_boot;
mod image;
mod install;
mod live;
mod live_init;
mod live_net;
mod logging_host;
mod phone_home;
mod progress;
mod rebuild;
mod remote;
mod robot;
mod storage_step;
mod inventory_view;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // keel-live's /init is keel
    if std::process::id() == 1 {
        live_init::run_as_init();
    }
    let cli = cli::Cli::parse();
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keel: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
