//! The Telemetry stream: the settings handshake every client waits for,
//! and the channel on which the broker asks producers to resolve orphaned
//! transactions ([`crate::txn::Producers`]).

use tern_model::GroupName;
use tern_protocol::settings::{self, GroupPolicy, ServerLimits};
use tern_protocol::telemetry;
use tern_protocol::v2::settings::PubSub;
use tern_protocol::v2::{ClientType, Settings, TelemetryCommand};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Streaming};

use super::Messaging;
use super::status::Client;
use super::transaction::check_command;
use crate::consume::MAX_LONG_POLLING;
use crate::txn::producers::{PUSH_CAPACITY, StreamGuard};

pub(super) use tern_protocol::telemetry::TelemetryStream;

impl Messaging {
    /// Answers each `settings` command at once with the merged settings
    /// ([`tern_protocol::telemetry::serve`]); keeps the stream open until
    /// the client closes it or the server shuts down. While it is open the
    /// stream is registered with the live producers, with the topics its
    /// settings say it publishes, so transaction checks can be pushed on
    /// it.
    pub(super) fn telemetry(
        &self,
        req: Request<Streaming<TelemetryCommand>>,
    ) -> Response<TelemetryStream> {
        let client = Client::of(&req).map(|c| c.id);
        let (push, pushed) = mpsc::channel(PUSH_CAPACITY);
        // Dropped with the settings hook when the stream ends.
        let registered = client
            .as_ref()
            .ok()
            .map(|id| self.shared.produce.producers().opened(id, push));
        let (closing, that) = (self.shared.closing.clone(), self.clone());
        let closed = async move { closing.closed().await };
        let hook = move |s: Settings| {
            if let Some(r) = &registered {
                declare(r, &s);
            }
            that.settings(s)
        };
        let pushed = ReceiverStream::new(pushed).map(check_command as fn(_) -> TelemetryCommand);
        let stream = telemetry::serve(client, req.into_inner(), closed, hook, pushed);
        Response::new(stream)
    }

    /// The client's settings merged with the broker's
    /// ([`tern_protocol::settings::merge`]), with the policy of the
    /// consumer group from the registry.
    fn settings(&self, s: Settings) -> Settings {
        let limits = ServerLimits {
            max_body_bytes: self.shared.cfg.max_body_bytes,
            long_polling: MAX_LONG_POLLING,
        };
        settings::merge(s, limits, |name| {
            let name = GroupName::new(name).ok()?;
            let g = self.shared.registry.group(name.as_str()).ok()?;
            Some(GroupPolicy {
                fifo: g.fifo(),
                max_retries: g.max_retries(),
            })
        })
    }
}

/// Tells the live producers what the client's `settings` say: whether it
/// is a producer, and which topics it publishes.
fn declare(stream: &StreamGuard, settings: &Settings) {
    let publishing = match &settings.pub_sub {
        Some(PubSub::Publishing(p)) => Some(p),
        _ => None,
    };
    let producer = settings.client_type == Some(ClientType::Producer as i32)
        || (settings.client_type.is_none() && publishing.is_some());
    let topics = publishing
        .iter()
        .flat_map(|p| p.topics.iter())
        .map(|t| t.name.clone());
    stream.declared(producer, topics);
}
