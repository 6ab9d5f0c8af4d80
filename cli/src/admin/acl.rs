//! `tern acl ...`.

use clap::{ArgGroup, Args, Subcommand};
use comfy_table::Cell;
use tern_client::{AccessRule, Action, Decision, ResourceKind, User, UserKind};

use super::Conn;
use super::output::{Output, print_json, print_table, say, table};

pub(super) const LONG_ABOUT: &str = "Grant, revoke and list what users may \
do with topics and groups.\n\n\
A normal user may do nothing until a rule allows it. A rule names a \
resource, --topic or --group, by a pattern: a name (`orders`), a prefix \
(`orders-*`) or `*` (all); the actions it is about; whether it allows or, \
with --deny, denies them; and optionally the client networks it applies to \
(--source 10.0.0.0/8; none: any). An action is allowed when some rule \
allows it and no rule denies it: a deny wins. Super users may do \
everything, whatever their rules.\n\n\
Actions: pub (send to a topic), sub (receive from a topic, and consume as a \
group: a consumer needs sub on both its topic and its group), create, \
update, delete, get (describe, lag, message lookups) and list (`tern topic \
list`, `tern group list`, `tern cluster status`: these need a rule on the \
pattern `*`).\n\n\
These commands need a super user (see `tern user --help`).\n\n\
Examples:\n  \
tern acl grant app --topic orders --actions pub\n  \
tern acl grant app --topic 'orders-*' --actions pub,sub\n  \
tern acl grant app --group g --actions sub --source 10.0.0.0/8\n  \
tern acl grant app --topic orders-secret --actions sub --deny\n  \
tern acl revoke app --topic orders --actions pub\n  \
tern acl revoke app --group g --source 10.0.0.0/8\n  \
tern acl list app";

/// The `tern acl` subcommands.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Allow (or with --deny, deny) a user actions on topics or groups
    #[command(long_about = "Allow a user actions on the topics or groups a \
        pattern names; with --deny, deny them (a deny wins over any allow).\n\n\
        The actions are added to the user's rule with the same resource, \
        pattern, decision and sources, or make a new rule.\n\n\
        Examples:\n  \
        tern acl grant app --topic orders --actions pub\n  \
        tern acl grant app --topic '*' --actions list,get\n  \
        tern acl grant app --group g --actions sub --source 10.1.0.0/16\n  \
        tern acl grant app --topic orders-secret --actions sub --deny")]
    Grant(GrantArgs),

    /// Remove actions from one of a user's rules
    #[command(long_about = "Remove actions from the user's rule with the \
        same resource, pattern, decision (--deny for a deny rule) and \
        sources; without --actions, the whole rule. Fails when the user has \
        no such rule.\n\n\
        Examples:\n  \
        tern acl revoke app --topic orders --actions pub\n  \
        tern acl revoke app --topic orders-secret --deny\n  \
        tern acl revoke app --group g --source 10.1.0.0/16")]
    Revoke(RevokeArgs),

    /// List the rules of one user or of all
    #[command(long_about = "List the access rules of USER, or of every user: \
        one line per rule. A super user is listed with `everything`.\n\n\
        Examples:\n  \
        tern acl list\n  \
        tern acl list app --output json")]
    List(ListArgs),
}

fn parse_action(text: &str) -> Result<Action, String> {
    text.parse()
        .map_err(|e: tern_client::ClientError| e.to_string())
}

/// Which resources a rule is about.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("resource").required(true).args(["topic", "group"])))]
pub struct Target {
    /// Topics: a name, `prefix*` or `*`
    #[arg(long, value_name = "PATTERN")]
    topic: Option<String>,

    /// Consumer groups: a name, `prefix*` or `*`
    #[arg(long, value_name = "PATTERN")]
    group: Option<String>,

    /// A deny rule (a deny wins over any allow)
    #[arg(long)]
    deny: bool,

    /// Only requests from this IP address or network (10.0.0.0/8);
    /// repeat for several [default: any]
    #[arg(long = "source", value_name = "CIDR")]
    sources: Vec<String>,
}

impl Target {
    fn rule(&self, actions: Vec<Action>) -> AccessRule {
        let (resource, pattern) = match (&self.topic, &self.group) {
            (Some(t), _) => (ResourceKind::Topic, t.clone()),
            (None, g) => (ResourceKind::Group, g.clone().unwrap_or_default()),
        };
        AccessRule {
            resource,
            pattern,
            actions,
            decision: if self.deny {
                Decision::Deny
            } else {
                Decision::Allow
            },
            sources: self.sources.clone(),
        }
    }
}

/// Arguments of `tern acl grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The user's name
    #[arg(value_name = "USER")]
    user: String,

    #[command(flatten)]
    target: Target,

    /// What to allow (or deny), separated by commas: pub, sub, create,
    /// update, delete, get, list
    #[arg(
        long,
        value_name = "ACTIONS",
        required = true,
        value_delimiter = ',',
        value_parser = parse_action
    )]
    actions: Vec<Action>,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern acl revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The user's name
    #[arg(value_name = "USER")]
    user: String,

    #[command(flatten)]
    target: Target,

    /// What to remove, separated by commas [default: the whole rule]
    #[arg(long, value_name = "ACTIONS", value_delimiter = ',', value_parser = parse_action)]
    actions: Vec<Action>,

    #[command(flatten)]
    conn: Conn,
}

/// Arguments of `tern acl list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this user's rules
    #[arg(value_name = "USER")]
    user: Option<String>,

    #[command(flatten)]
    conn: Conn,
}

/// `allow pub,sub on topic orders* from 10.0.0.0/8`.
fn describe(r: &AccessRule) -> String {
    let actions: Vec<&str> = r.actions.iter().map(|a| a.as_str()).collect();
    let mut s = format!(
        "{} {} on {} {}",
        r.decision,
        if actions.is_empty() {
            "all".to_owned()
        } else {
            actions.join(",")
        },
        r.resource,
        r.pattern
    );
    if !r.sources.is_empty() {
        s.push_str(&format!(" from {}", r.sources.join(",")));
    }
    s
}

/// Prints a user's rules after a change.
fn print_user(output: Output, said: &str, u: &User) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(u),
        Output::Table => {
            say(said)?;
            print_rules(std::slice::from_ref(u))
        }
    }
}

fn print_rules(users: &[User]) -> anyhow::Result<()> {
    if users.is_empty() {
        return say("no users");
    }
    let mut t = table([
        "user", "kind", "decision", "resource", "pattern", "actions", "sources",
    ]);
    for u in users {
        if u.kind == UserKind::Super {
            let row = [
                u.name.as_str(),
                "super",
                "allow",
                "*",
                "*",
                "everything",
                "any",
            ];
            t.add_row(row.map(Cell::new));
            continue;
        }
        if u.rules.is_empty() {
            let row = [u.name.as_str(), "normal", "-", "-", "-", "nothing", "-"];
            t.add_row(row.map(Cell::new));
        }
        for r in &u.rules {
            let actions: Vec<&str> = r.actions.iter().map(|a| a.as_str()).collect();
            t.add_row(vec![
                Cell::new(&u.name),
                Cell::new(u.kind),
                Cell::new(r.decision),
                Cell::new(r.resource),
                Cell::new(&r.pattern),
                Cell::new(actions.join(",")),
                Cell::new(if r.sources.is_empty() {
                    "any".to_owned()
                } else {
                    r.sources.join(",")
                }),
            ]);
        }
    }
    print_table(t)
}

pub(super) async fn run(command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Grant(a) => {
            let rule = a.target.rule(a.actions);
            let u = a.conn.admin().await?.grant_access(&a.user, &rule).await?;
            print_user(
                a.conn.output,
                &format!("granted user {}: {}", u.name, describe(&rule)),
                &u,
            )
        }
        AclCommand::Revoke(a) => {
            let rule = a.target.rule(a.actions);
            let u = a.conn.admin().await?.revoke_access(&a.user, &rule).await?;
            print_user(
                a.conn.output,
                &format!("revoked from user {}: {}", u.name, describe(&rule)),
                &u,
            )
        }
        AclCommand::List(a) => {
            let users = a.conn.admin().await?.list_access(a.user.as_deref()).await?;
            match a.conn.output {
                Output::Json => print_json(&users),
                Output::Table => print_rules(&users),
            }
        }
    }
}
