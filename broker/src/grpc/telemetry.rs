//! The Telemetry stream: the settings handshake every client waits for,
//! and the channel on which the broker asks producers to resolve orphaned
//! transactions ([`super::producers`]).

use tern_model::GroupName;
use tern_protocol::settings::{self, GroupPolicy, ServerLimits};
use tern_protocol::telemetry;
use tern_protocol::v2::{Settings, TelemetryCommand};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Streaming};

use super::producers::PUSH_CAPACITY;
use super::status::Client;
use super::{MAX_LONG_POLLING, Messaging};

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
            .map(|id| self.shared.producers.opened(id, push));
        let (this, that) = (self.clone(), self.clone());
        let closed = async move { this.closed().await };
        let hook = move |s: Settings| {
            if let Some(r) = &registered {
                r.settings(&s);
            }
            that.settings(s)
        };
        let pushed = ReceiverStream::new(pushed);
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
