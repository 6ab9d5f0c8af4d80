//! Administration and everyday use against a running Tern: `tern topic`,
//! `tern group`, `tern cluster`, `tern produce`, `tern consume`,
//! `tern message`, and `tern user` and `tern acl` (users and their access
//! rules, for a broker with authentication on).
//!
//! Each command connects with `tern-client` to `--endpoint`, does one
//! thing, and prints the result as a human table or, with `--output json`,
//! as JSON (`produce` and `consume` print JSON lines: one object per
//! message). Failures are one line naming what was attempted and the
//! status the server gave, and a non-zero exit. With --access-key and
//! --secret-key every request is signed as that user.

mod acl;
mod cluster;
mod consume;
mod group;
mod message;
mod output;
mod produce;
mod topic;
mod user;

use std::time::Duration;

use clap::{Args, Subcommand};
use tern_client::{AdminClient, Credentials, Endpoints, MessagingClient};
use tern_tls::{ClientTls, ClientTlsConfig};

pub use output::Output;

/// Default access point of the commands, the official clients' default
/// port on this host.
pub const DEFAULT_ENDPOINT: &str = "127.0.0.1:8081";

/// The admin and everyday subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create, update, list, describe and delete topics
    #[command(subcommand, long_about = topic::LONG_ABOUT)]
    Topic(topic::TopicCommand),

    /// Create, update, list, describe and delete consumer groups, and see
    /// their lag
    #[command(subcommand, long_about = group::LONG_ABOUT)]
    Group(group::GroupCommand),

    /// Brokers and storage of a cluster
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),

    /// Send messages to a topic: one per line of standard input, or --body
    #[command(long_about = produce::LONG_ABOUT)]
    Produce(produce::ProduceArgs),

    /// Receive, print and acknowledge messages of a topic as a consumer
    /// group
    #[command(long_about = consume::LONG_ABOUT)]
    Consume(consume::ConsumeArgs),

    /// Find stored messages by id, by key or by store time
    #[command(subcommand, long_about = message::LONG_ABOUT)]
    Message(message::MessageCommand),

    /// Create, list, update and delete the users a broker with
    /// authentication on accepts
    #[command(subcommand, long_about = user::LONG_ABOUT)]
    User(user::UserCommand),

    /// Grant, revoke and list what users may do with topics and groups
    #[command(subcommand, long_about = acl::LONG_ABOUT)]
    Acl(acl::AclCommand),
}

/// Where to connect and how to print: the options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Tern access point as HOST:PORT (optionally http://HOST:PORT, or
    /// https://HOST:PORT for TLS); several separated by `;` are tried in
    /// order
    #[arg(
        long,
        short = 'e',
        value_name = "HOST:PORT",
        env = "TERN_ENDPOINT",
        default_value = DEFAULT_ENDPOINT,
        value_parser = parse_endpoints
    )]
    pub endpoint: Endpoints,

    /// Output format: `table` for people, `json` for programs
    #[arg(
        long,
        short = 'o',
        value_enum,
        env = "TERN_OUTPUT",
        default_value_t = Output::Table
    )]
    pub output: Output,

    /// Seconds to wait for a connection and for each call's answer
    #[arg(
        long,
        value_name = "SECS",
        env = "TERN_TIMEOUT",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub timeout: u64,

    /// Connect with TLS, checking the server's certificate against
    /// --ca-file or the system's CA bundle (implied by the two options
    /// below and by https:// endpoints)
    #[arg(long, env = "TERN_TLS")]
    pub tls: bool,

    /// PEM CA certificates to check the server's certificate against (a
    /// broker's generated certificate: its DATA_DIR/tls/ca.crt); implies
    /// --tls
    #[arg(long, value_name = "FILE", env = "TERN_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,

    /// Connect with TLS without checking the server's certificate
    /// (encrypted, but the server is not authenticated); implies --tls
    #[arg(long, env = "TERN_INSECURE_SKIP_VERIFY", conflicts_with = "ca_file")]
    pub insecure_skip_verify: bool,

    /// Sign every request as the user with this access key (for a broker
    /// with authentication on); needs --secret-key
    #[arg(
        long,
        value_name = "KEY",
        env = "TERN_ACCESS_KEY",
        requires = "secret_key"
    )]
    pub access_key: Option<String>,

    /// The secret key of --access-key (prefer the variable: a flag shows
    /// in the process list)
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERN_SECRET_KEY",
        hide_env_values = true,
        requires = "access_key"
    )]
    pub secret_key: Option<String>,
}

impl Conn {
    fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    fn connect_timeout(&self) -> Duration {
        self.call_timeout()
            .min(tern_client::DEFAULT_CONNECT_TIMEOUT)
    }

    /// Whether the options ask for TLS (an https:// endpoint aside).
    pub(crate) fn wants_tls(&self) -> bool {
        self.tls || self.ca_file.is_some() || self.insecure_skip_verify
    }

    /// Whether the options give credentials.
    pub(crate) fn wants_credentials(&self) -> bool {
        self.access_key.is_some() || self.secret_key.is_some()
    }

    /// The credentials to sign with, if given.
    fn credentials(&self) -> anyhow::Result<Option<Credentials>> {
        match (&self.access_key, &self.secret_key) {
            (Some(a), Some(s)) => Ok(Some(Credentials::new(a.as_str(), s.as_str())?)),
            (None, None) => Ok(None),
            _ => anyhow::bail!("--access-key and --secret-key go together"),
        }
    }

    /// The endpoints, dialled with the TLS the options ask for.
    fn endpoints(&self) -> anyhow::Result<Endpoints> {
        if !self.wants_tls() {
            return Ok(self.endpoint.clone());
        }
        let tls = ClientTls::new(ClientTlsConfig {
            ca_file: self.ca_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
            ..ClientTlsConfig::default()
        })?;
        Ok(self.endpoint.clone().with_tls(Some(tls)))
    }

    async fn admin(&self) -> anyhow::Result<AdminClient> {
        let credentials = self.credentials()?;
        Ok(AdminClient::connect_with(
            &self.endpoints()?,
            self.connect_timeout(),
            self.call_timeout(),
        )
        .await?
        .with_credentials(credentials))
    }

    async fn messaging(&self) -> anyhow::Result<MessagingClient> {
        let credentials = self.credentials()?;
        Ok(MessagingClient::connect_with(
            self.endpoints()?,
            self.connect_timeout(),
            self.call_timeout(),
        )
        .await?
        .with_credentials(credentials))
    }
}

fn parse_endpoints(text: &str) -> Result<Endpoints, String> {
    Endpoints::parse(text).map_err(|e| e.to_string())
}

pub(crate) fn run(command: AdminCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            AdminCommand::Topic(c) => topic::run(c).await,
            AdminCommand::Group(c) => group::run(c).await,
            AdminCommand::Cluster(c) => cluster::run(c).await,
            AdminCommand::Produce(a) => produce::run(a).await,
            AdminCommand::Consume(a) => consume::run(a).await,
            AdminCommand::Message(c) => message::run(c).await,
            AdminCommand::User(c) => user::run(c).await,
            AdminCommand::Acl(c) => acl::run(c).await,
        }
    })
}
