//! The server side of the Telemetry stream, shared by the broker and the
//! name server: every `settings` command a client sends is answered at
//! once with the settings the server merges for it (see [`crate::settings`]);
//! other commands are ignored. The stream stays open until the client
//! closes it, it fails, or the server shuts down.

use std::future::Future;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt as _};

use crate::status::ok;
use crate::v2::{Settings, Status, TelemetryCommand, telemetry_command::Command};

/// The server's half of a Telemetry stream.
pub type TelemetryStream = ReceiverStream<Result<TelemetryCommand, tonic::Status>>;

/// Serves one Telemetry stream on a task of the current tokio runtime.
///
/// `client` is the caller's id, or the status that refuses it (for
/// example from [`crate::status::client_id`]): a refused client gets that
/// status as the only command, and the stream ends. Otherwise each
/// `settings` command from `inbound` is answered with `settings` of it
/// and an `OK` status, until `inbound` ends or fails, the reader goes
/// away, or `closed` resolves.
///
/// Must be called within a tokio runtime.
pub fn serve<I, C, S>(
    client: Result<String, Status>,
    mut inbound: I,
    closed: C,
    settings: S,
) -> TelemetryStream
where
    I: Stream<Item = Result<TelemetryCommand, tonic::Status>> + Unpin + Send + 'static,
    C: Future<Output = ()> + Send + 'static,
    S: Fn(Settings) -> Settings + Send + 'static,
{
    let (tx, rx) = mpsc::channel(8);
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
        tokio::pin!(closed);
        loop {
            tokio::select! {
                () = &mut closed => break,
                next = inbound.next() => match next {
                    Some(Ok(cmd)) => {
                        let Some(Command::Settings(s)) = cmd.command else {
                            continue;
                        };
                        let reply = TelemetryCommand {
                            status: Some(ok()),
                            command: Some(Command::Settings(settings(s))),
                        };
                        if tx.send(Ok(reply)).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                    Some(Err(e)) => {
                        tracing::debug!(%client, error = %e, "telemetry stream ended");
                        break;
                    }
                },
            }
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;
    use crate::status::status;
    use crate::v2::{Code, ThreadStackTrace};

    type Inbound = mpsc::Sender<Result<TelemetryCommand, tonic::Status>>;

    fn settings_cmd(timeout_secs: i64) -> TelemetryCommand {
        TelemetryCommand {
            status: None,
            command: Some(Command::Settings(Settings {
                request_timeout: Some(prost_types::Duration {
                    seconds: timeout_secs,
                    nanos: 0,
                }),
                ..Default::default()
            })),
        }
    }

    /// A served stream whose merge doubles the request timeout, with its
    /// inbound sender and the trigger of `closed`.
    fn start(client: Result<String, Status>) -> (TelemetryStream, Inbound, oneshot::Sender<()>) {
        let (in_tx, in_rx) = mpsc::channel(8);
        let (close_tx, close_rx) = oneshot::channel::<()>();
        let closed = async move {
            let _ = close_rx.await;
        };
        let out = serve(client, ReceiverStream::new(in_rx), closed, |mut s| {
            if let Some(t) = s.request_timeout.as_mut() {
                t.seconds *= 2;
            }
            s
        });
        (out, in_tx, close_tx)
    }

    async fn next(out: &mut TelemetryStream) -> Option<TelemetryCommand> {
        tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .expect("the stream neither answered nor ended")
            .map(Result::unwrap)
    }

    #[tokio::test]
    async fn settings_are_answered_until_the_client_closes() {
        let (mut out, tx, _close) = start(Ok("c".to_owned()));
        tx.send(Ok(settings_cmd(3))).await.unwrap();
        let other = TelemetryCommand {
            status: None,
            command: Some(Command::ThreadStackTrace(ThreadStackTrace::default())),
        };
        tx.send(Ok(other)).await.unwrap();
        tx.send(Ok(settings_cmd(5))).await.unwrap();
        for want in [6, 10] {
            let cmd = next(&mut out).await.unwrap();
            assert_eq!(cmd.status.unwrap().code, Code::Ok as i32);
            let Some(Command::Settings(s)) = cmd.command else {
                panic!("settings expected");
            };
            assert_eq!(s.request_timeout.unwrap().seconds, want);
        }
        drop(tx);
        assert!(next(&mut out).await.is_none());
    }

    #[tokio::test]
    async fn a_refused_client_gets_the_status_and_the_stream_ends() {
        let refusal = status(Code::ClientIdRequired, "no id");
        let (mut out, tx, _close) = start(Err(refusal.clone()));
        let cmd = next(&mut out).await.unwrap();
        assert_eq!((cmd.status, cmd.command), (Some(refusal), None));
        assert!(next(&mut out).await.is_none());
        drop(tx);
    }

    #[tokio::test]
    async fn the_stream_ends_when_the_server_closes_or_the_client_fails() {
        let (mut out, tx, close) = start(Ok("c".to_owned()));
        close.send(()).unwrap();
        assert!(next(&mut out).await.is_none());
        drop(tx);

        let (mut out, tx, _close) = start(Ok("c".to_owned()));
        tx.send(Err(tonic::Status::cancelled("gone")))
            .await
            .unwrap();
        assert!(next(&mut out).await.is_none());
    }
}
