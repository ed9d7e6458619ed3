//! `mora upload` and `mora models`: the model lifecycle of a running server.

use anyhow::Context;

use super::{ModelsAction, ModelsArgs, UploadArgs};
use crate::api::client::{self, ModelsAction as Action};
use crate::models::repository::Role;

pub(super) async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let role = match (args.activate, args.shadow) {
        (true, _) => Some(Role::Active),
        (_, true) => Some(Role::Shadow),
        _ => None,
    };
    let described = client::upload(&args.server.remote(), &bytes, role)
        .await
        .with_context(|| format!("uploading {}", args.file.display()))?;
    print!("{described}");
    Ok(())
}

pub(super) async fn models(args: ModelsArgs) -> anyhow::Result<()> {
    let action = match args.action {
        ModelsAction::List { kind } => Action::List { kind },
        ModelsAction::Activate {
            kind,
            version,
            shadow,
        } => Action::Activate {
            kind,
            version,
            role: if shadow { Role::Shadow } else { Role::Active },
        },
        ModelsAction::Rollback { kind } => Action::Rollback { kind },
        ModelsAction::ClearShadow { kind } => Action::ClearShadow { kind },
    };
    print!("{}", client::manage(&args.server.remote(), action).await?);
    Ok(())
}
