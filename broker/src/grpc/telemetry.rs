//! The Telemetry stream: the settings handshake every client waits for.

use tern_model::GroupName;
use tern_protocol::settings::{self, GroupPolicy, ServerLimits};
use tern_protocol::telemetry;
use tern_protocol::v2::{Settings, TelemetryCommand};
use tonic::{Request, Response, Streaming};

use super::status::Client;
use super::{MAX_LONG_POLLING, Messaging};

pub(super) use tern_protocol::telemetry::TelemetryStream;

impl Messaging {
    /// Answers each `settings` command at once with the merged settings
    /// ([`tern_protocol::telemetry::serve`]); keeps the stream open until
    /// the client closes it or the server shuts down.
    pub(super) fn telemetry(
        &self,
        req: Request<Streaming<TelemetryCommand>>,
    ) -> Response<TelemetryStream> {
        let client = Client::of(&req).map(|c| c.id);
        let (this, that) = (self.clone(), self.clone());
        let closed = async move { this.closed().await };
        let stream = telemetry::serve(client, req.into_inner(), closed, move |s| that.settings(s));
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
