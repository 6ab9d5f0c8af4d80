//! `tern user ...`.

use clap::{ArgGroup, Args, Subcommand};
use comfy_table::Cell;
use serde_json::json;
use tern_client::UserKind;

use super::Conn;
use super::output::{Output, num, print_json, print_table, say, table};

pub(super) const LONG_ABOUT: &str = "Create, list, update and delete users.\n\n\
A broker started with --auth-enabled refuses every request that is not \
signed by one of its users: an access key (the user's name) and a secret \
key, which clients give as credentials (`tern` takes --access-key and \
--secret-key, or TERN_ACCESS_KEY and TERN_SECRET_KEY). A super user may do \
everything; a normal user only what its access rules allow (see `tern acl \
--help`). These commands need a super user, such as the bootstrap user the \
broker was started with (--auth-bootstrap-access-key and \
TERN_AUTH_BOOTSTRAP_SECRET_KEY).\n\n\
A secret key is shown once, when the user is created; `tern user list` \
never shows one. The broker keeps users and rules in its data directory \
(meta/ files readable by its owner only).\n\n\
Examples:\n  \
export TERN_ACCESS_KEY=root TERN_SECRET_KEY=...\n  \
tern user create app\n  \
tern user create ops --super\n  \
tern user list\n  \
tern user update app --user-secret-key 'a-new-secret-key'\n  \
tern user delete app";

/// The `tern user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print its secret key (once)
    #[command(long_about = "Create a user and print its secret key.\n\n\
        Without --user-secret-key the broker generates one: 32 random \
        letters and digits. The secret key is printed this once (with \
        --output json too): keep it, it cannot be read back; a new one can \
        be set with `tern user update`. The user is normal unless --super; \
        a normal user may do nothing until rules are granted with `tern acl \
        grant`.\n\n\
        Examples:\n  \
        tern user create app\n  \
        tern user create app --user-secret-key 'at-least-8-characters'\n  \
        tern user create ops --super --output json")]
    Create(CreateArgs),

    /// List the users, their kind and how many rules each has
    #[command(long_about = "List the users, sorted by name: each one's kind \
        (super or normal) and the number of its access rules (`tern acl \
        list` shows them). Secret keys are never shown.\n\n\
        Examples:\n  \
        tern user list\n  \
        tern user list --output json")]
    List(ListArgs),

    /// Set a user's secret key or kind
    #[command(long_about = "Set a user's secret key, its kind, or both; its \
        access rules are kept. A new secret key takes effect at once: \
        requests signed with the old one are refused.\n\n\
        Examples:\n  \
        tern user update app --user-secret-key 'a-new-secret-key'\n  \
        tern user update app --super\n  \
        tern user update ops --normal")]
    Update(UpdateArgs),

    /// Delete a user: its requests are refused from then on
    #[command(long_about = "Delete a user and its access rules: requests \
        signed with its keys are refused from then on.\n\n\
        Example:\n  \
        tern user delete app")]
    Delete(NameArgs),
}

/// Arguments of `tern user create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The user's name, its access key: letters, digits and -_.
    #[arg(value_name = "NAME")]
    name: String,

    /// The user's secret key, 8 to 256 printable characters without
    /// spaces [default: generated]
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERN_USER_SECRET_KEY",
        hide_env_values = true
    )]
    user_secret_key: Option<String>,

    /// Make a super user, who may do everything
    #[arg(long = "super")]
    super_user: bool,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern user update`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)
    .args(["user_secret_key", "super_user", "normal"])))]
pub struct UpdateArgs {
    /// The user's name
    #[arg(value_name = "NAME")]
    name: String,

    /// A new secret key, 8 to 256 printable characters without spaces
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERN_USER_SECRET_KEY",
        hide_env_values = true
    )]
    user_secret_key: Option<String>,

    /// Make the user a super user
    #[arg(long = "super", conflicts_with = "normal")]
    super_user: bool,

    /// Make the user a normal user (its rules apply again)
    #[arg(long)]
    normal: bool,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern user list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    conn: Conn,
}

/// Arguments naming one user.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The user's name
    #[arg(value_name = "NAME")]
    name: String,

    #[command(flatten)]
    conn: Conn,
}

pub(super) async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(a) => {
            let kind = if a.super_user {
                UserKind::Super
            } else {
                UserKind::Normal
            };
            let u = a
                .conn
                .admin()
                .await?
                .create_user(&a.name, a.user_secret_key.as_deref(), kind)
                .await?;
            match a.conn.output {
                Output::Json => print_json(&u),
                Output::Table => say(&format!(
                    "created {} user {}\nsecret key: {}\n(shown this once: keep it)",
                    u.kind, u.name, u.secret_key
                )),
            }
        }
        UserCommand::List(a) => {
            let users = a.conn.admin().await?.list_users().await?;
            match a.conn.output {
                Output::Json => print_json(&users),
                Output::Table if users.is_empty() => say("no users"),
                Output::Table => {
                    let mut t = table(["name", "kind", "rules"]);
                    for u in &users {
                        t.add_row(vec![
                            Cell::new(&u.name),
                            Cell::new(u.kind),
                            num(u.rules.len()),
                        ]);
                    }
                    print_table(t)
                }
            }
        }
        UserCommand::Update(a) => {
            let kind = match (a.super_user, a.normal) {
                (true, _) => Some(UserKind::Super),
                (_, true) => Some(UserKind::Normal),
                _ => None,
            };
            let u = a
                .conn
                .admin()
                .await?
                .update_user(&a.name, a.user_secret_key.as_deref(), kind)
                .await?;
            match a.conn.output {
                Output::Json => print_json(&u),
                Output::Table => {
                    let mut changed = Vec::new();
                    if a.user_secret_key.is_some() {
                        changed.push("new secret key".to_owned());
                    }
                    if kind.is_some() {
                        changed.push(format!("{} user", u.kind));
                    }
                    say(&format!("updated user {}: {}", u.name, changed.join(", ")))
                }
            }
        }
        UserCommand::Delete(a) => {
            a.conn.admin().await?.delete_user(&a.name).await?;
            match a.conn.output {
                Output::Json => print_json(&json!({ "deleted": a.name })),
                Output::Table => say(&format!("deleted user {}", a.name)),
            }
        }
    }
}
