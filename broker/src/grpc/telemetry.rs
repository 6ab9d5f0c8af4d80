//! The Telemetry stream: the settings handshake every client waits for.

use tern_model::GroupName;
use tern_protocol::settings::{self, GroupPolicy, ServerLimits};
use tern_protocol::v2::{Settings, TelemetryCommand, telemetry_command::Command};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Streaming};

use super::status::{Client, ok};
use super::{MAX_LONG_POLLING, Messaging};

pub(super) type TelemetryStream = ReceiverStream<Result<TelemetryCommand, tonic::Status>>;

impl Messaging {
    /// Answers each `settings` command at once with the merged settings;
    /// keeps the stream open until the client closes it or the server
    /// shuts down.
    pub(super) fn telemetry(
        &self,
        req: Request<Streaming<TelemetryCommand>>,
    ) -> Response<TelemetryStream> {
        let client = Client::of(&req);
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(8);
        let this = self.clone();
        tokio::spawn(async move {
            let client = match client {
                Ok(c) => c,
                Err(status) => {
                    let cmd = TelemetryCommand {
                        status: Some(status),
                        command: None,
                    };
                    let _ = tx.send(Ok(cmd)).await;
                    return;
                }
            };
            loop {
                tokio::select! {
                    () = this.closed() => break,
                    next = inbound.message() => match next {
                        Ok(Some(cmd)) => {
                            let Some(Command::Settings(s)) = cmd.command else {
                                continue;
                            };
                            let reply = TelemetryCommand {
                                status: Some(ok()),
                                command: Some(Command::Settings(this.settings(s))),
                            };
                            if tx.send(Ok(reply)).await.is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(client = %client.id, error = %e, "telemetry stream ended");
                            break;
                        }
                    },
                }
            }
        });
        Response::new(ReceiverStream::new(rx))
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
