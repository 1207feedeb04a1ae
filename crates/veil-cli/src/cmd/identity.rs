//! `veil identity`: the long-term identity keys of the encrypted channels (Noise IK, X25519).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use veil_harness::server::{identity_key, new_identity};

/// `veil identity ...`.
#[derive(Subcommand, Debug)]
pub enum IdentityCommand {
    /// Create an identity file (private, mode 0600) and print its public key, which peers pin
    /// (`veil infer --server-key`) or allow (`veil serve --allow-client`).
    New {
        /// Where to write it (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print an identity file's public key.
    Show {
        /// The identity file.
        file: PathBuf,
    },
}

/// Runs one `veil identity` subcommand.
pub fn run(cmd: IdentityCommand) -> Result<()> {
    match cmd {
        IdentityCommand::New { out } => {
            println!("{}", new_identity(&out)?);
            eprintln!(
                "wrote {} (private, mode 0600); its public key is above",
                out.display()
            );
        }
        IdentityCommand::Show { file } => println!("{}", identity_key(&file)?),
    }
    Ok(())
}
