//! `mora token`: a new access token and the config entry that accepts it.

use std::io::Read;

use anyhow::Context;
use rand::RngCore;

use super::{RoleArg, TokenArgs};
use crate::api::auth::{Role, TokenEntry, token_sha256};

pub(super) fn token(args: TokenArgs) -> anyhow::Result<()> {
    let (token, made) = if args.stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the token from standard input")?;
        (text.trim().to_owned(), false)
    } else {
        (new_token(), true)
    };
    anyhow::ensure!(!token.is_empty(), "the token is empty");
    let roles = args
        .roles
        .iter()
        .map(|role| match role {
            RoleArg::Ingest => Role::Ingest,
            RoleArg::Score => Role::Score,
            RoleArg::Admin => Role::Admin,
        })
        .collect();
    let entry = TokenEntry {
        name: args.name,
        sha256: token_sha256(&token),
        roles,
    };
    if made {
        println!("# The token: give it to its holder; it is shown only this once.");
        println!("# {token}");
    }
    println!("[[auth.tokens]]");
    print!(
        "{}",
        toml::to_string(&entry).context("writing the config entry")?
    );
    Ok(())
}

/// 256 random bits from the operating system, hex-encoded.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("mora_{}", hex::encode(bytes))
}
