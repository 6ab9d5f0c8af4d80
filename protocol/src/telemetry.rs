//! The server side of the Telemetry stream, shared by the broker and the
//! name server: every `settings` command a client sends is answered at
//! once with the settings the server merges for it (see [`crate::settings`]);
//! other commands are ignored. The server may also push commands of its
//! own on the open stream (the broker asks producers to resolve orphaned
//! transactions this way). The stream stays open until the client closes
//! it, it fails, or the server shuts down.

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
/// away, or `closed` resolves. `settings` sees the client's own settings
/// before it merges them, so the caller learns what the client is (its
/// type, the topics it publishes); it is dropped when the stream ends.
///
/// Each command `pushes` yields is sent to the client as it comes; its
/// end does not end the stream (the name server, which pushes nothing,
/// passes [`tokio_stream::pending`]).
///
/// Must be called within a tokio runtime.
pub fn serve<I, C, S, P>(
    client: Result<String, Status>,
    mut inbound: I,
    closed: C,
    mut settings: S,
    mut pushes: P,
) -> TelemetryStream
where
    I: Stream<Item = Result<TelemetryCommand, tonic::Status>> + Unpin + Send + 'static,
    C: Future<Output = ()> + Send + 'static,
    S: FnMut(Settings) -> Settings + Send + 'static,
    P: Stream<Item = TelemetryCommand> + Unpin + Send + 'static,
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
        let mut pushing = true;
        loop {
            tokio::select! {
                () = &mut closed => break,
                () = tx.closed() => break,
                pushed = pushes.next(), if pushing => match pushed {
                    Some(cmd) => {
                        if tx.send(Ok(cmd)).await.is_err() {
                            break;
                        }
                    }
                    None => pushing = false,
                },
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
    type Pushes = mpsc::Sender<TelemetryCommand>;

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
        let (out, in_tx, close_tx, _) = start_pushing(client);
        (out, in_tx, close_tx)
    }

    /// [`start`], and the sender of commands the server pushes.
    fn start_pushing(
        client: Result<String, Status>,
    ) -> (TelemetryStream, Inbound, oneshot::Sender<()>, Pushes) {
        let (in_tx, in_rx) = mpsc::channel(8);
        let (push_tx, push_rx) = mpsc::channel(8);
        let (close_tx, close_rx) = oneshot::channel::<()>();
        let closed = async move {
            let _ = close_rx.await;
        };
        let merge = |mut s: Settings| {
            if let Some(t) = s.request_timeout.as_mut() {
                t.seconds *= 2;
            }
            s
        };
        let pushes = ReceiverStream::new(push_rx);
        let out = serve(client, ReceiverStream::new(in_rx), closed, merge, pushes);
        (out, in_tx, close_tx, push_tx)
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
    async fn pushed_commands_reach_the_client_and_their_end_keeps_the_stream() {
        let (mut out, tx, _close, push) = start_pushing(Ok("c".to_owned()));
        let nonce = |n: &str| TelemetryCommand {
            status: None,
            command: Some(Command::ThreadStackTrace(ThreadStackTrace {
                nonce: n.to_owned(),
                thread_stack_trace: None,
            })),
        };
        push.send(nonce("one")).await.unwrap();
        let cmd = next(&mut out).await.unwrap();
        assert!(matches!(cmd.command, Some(Command::ThreadStackTrace(t)) if t.nonce == "one"));
        drop(push);
        // Settings are still answered after the pushes ended.
        tx.send(Ok(settings_cmd(2))).await.unwrap();
        let cmd = next(&mut out).await.unwrap();
        assert!(matches!(cmd.command, Some(Command::Settings(_))));
        drop(tx);
        assert!(next(&mut out).await.is_none());
    }

    #[tokio::test]
    async fn the_settings_hook_is_dropped_when_the_stream_ends() {
        let (in_tx, in_rx) = mpsc::channel(8);
        let alive = std::sync::Arc::new(());
        let held = std::sync::Arc::clone(&alive);
        let merge = move |s: Settings| {
            let _ = &held;
            s
        };
        let pending = tokio_stream::pending::<TelemetryCommand>();
        let mut out = serve(
            Ok("c".to_owned()),
            ReceiverStream::new(in_rx),
            std::future::pending(),
            merge,
            pending,
        );
        assert_eq!(std::sync::Arc::strong_count(&alive), 2);
        drop(in_tx);
        assert!(next(&mut out).await.is_none());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(std::sync::Arc::strong_count(&alive), 1);
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
