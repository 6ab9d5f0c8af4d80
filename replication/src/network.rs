//! Raft messages between replicas over gRPC (`tern.replication.v1`):
//! the client side (openraft's `RaftNetwork`, one lazily connected channel
//! per peer) and the service that hands received messages to the local
//! Raft.
//!
//! Each call carries one `Frame`: a 4-byte little-endian header length,
//! the message without its bulk as JSON, then the bulk as raw bytes (an
//! AppendEntries' entries as log frames, a snapshot chunk's data). Answers
//! are `Result<answer, RaftError>` as JSON, so a refusal by the remote
//! Raft (a newer term, say) comes back as openraft's own error.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, LogId, Raft, SnapshotMeta, Vote};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tern_protocol::replication::Frame;
use tern_protocol::replication::replication_client::ReplicationClient;
use tern_protocol::replication::replication_server::Replication;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::entry::{self, Entry, TypeConfig};
use crate::error::Error;

/// How long a peer has to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct AppendHead {
    vote: Vote<u64>,
    prev_log_id: Option<LogId<u64>>,
    leader_commit: Option<LogId<u64>>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotHead {
    vote: Vote<u64>,
    meta: SnapshotMeta<u64, BasicNode>,
    offset: u64,
    done: bool,
}

fn frame(head: &impl Serialize, bulk: &[u8]) -> Result<Frame, Error> {
    let head = serde_json::to_vec(head).map_err(|e| Error::Message(e.to_string()))?;
    let len = u32::try_from(head.len()).map_err(|_| Error::Message("header too long".into()))?;
    let mut out = Vec::with_capacity(4 + head.len() + bulk.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(bulk);
    Ok(Frame { frame: out })
}

fn unframe<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, &[u8]), Error> {
    let len = bytes
        .get(..4)
        .ok_or_else(|| Error::Message("frame shorter than its header length".into()))?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let head = bytes
        .get(4..4 + len)
        .ok_or_else(|| Error::Message("frame shorter than its header".into()))?;
    let head = serde_json::from_slice(head).map_err(|e| Error::Message(e.to_string()))?;
    Ok((head, &bytes[4 + len..]))
}

fn encode_append(rpc: &AppendEntriesRequest<TypeConfig>) -> Result<Frame, Error> {
    let mut bulk = Vec::new();
    for e in &rpc.entries {
        entry::encode(e, &mut bulk);
    }
    let head = AppendHead {
        vote: rpc.vote,
        prev_log_id: rpc.prev_log_id,
        leader_commit: rpc.leader_commit,
    };
    frame(&head, &bulk)
}

fn decode_append(bytes: &[u8]) -> Result<AppendEntriesRequest<TypeConfig>, Error> {
    let (head, mut bulk): (AppendHead, _) = unframe(bytes)?;
    let mut entries: Vec<Entry> = Vec::new();
    while !bulk.is_empty() {
        let (e, used) = entry::decode(bulk)?;
        entries.push(e);
        bulk = &bulk[used..];
    }
    Ok(AppendEntriesRequest {
        vote: head.vote,
        prev_log_id: head.prev_log_id,
        entries,
        leader_commit: head.leader_commit,
    })
}

/// Connects to the group's peers by their replication addresses, over
/// TLS when `tls` says how.
pub struct Connector {
    peers: BTreeMap<u64, String>,
    tls: Option<tern_tls::ClientTls>,
}

impl Connector {
    /// A connector for `peers` (replica id to `host:port`).
    pub fn new(peers: BTreeMap<u64, String>, tls: Option<tern_tls::ClientTls>) -> Self {
        Self { peers, tls }
    }
}

/// One peer as seen by the local Raft.
pub struct Peer {
    target: u64,
    client: Result<ReplicationClient<Channel>, String>,
}

impl RaftNetworkFactory<TypeConfig> for Connector {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        let address = self
            .peers
            .get(&target)
            .cloned()
            .unwrap_or_else(|| node.addr.clone());
        let client = Endpoint::from_shared(format!("http://{address}"))
            .map(|e| {
                let e = e.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true);
                let channel = match &self.tls {
                    Some(tls) => e.connect_with_connector_lazy(tls.connector()),
                    None => e.connect_lazy(),
                };
                ReplicationClient::new(channel)
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX)
            })
            .map_err(|e| format!("bad replication address {address:?}: {e}"));
        Peer { target, client }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl Peer {
    async fn call<T, E>(
        &mut self,
        request: Result<Frame, Error>,
        option: &RPCOption,
        which: fn(ReplicationClient<Channel>, Request<Frame>) -> CallFuture,
    ) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(e) => {
                return Err(RPCError::Unreachable(Unreachable::new(&Error::Config(
                    e.clone(),
                ))));
            }
        };
        let frame = request.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = Request::new(frame);
        request.set_timeout(option.hard_ttl());
        let answer = which(client, request)
            .await
            .map_err(|status| match status.code() {
                tonic::Code::Unavailable | tonic::Code::Unknown => {
                    RPCError::Unreachable(Unreachable::new(&status))
                }
                _ => RPCError::Network(NetworkError::new(&status)),
            })?;
        let result: Result<T, RaftError<u64, E>> =
            serde_json::from_slice(&answer.into_inner().frame)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

type CallFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Frame>, Status>> + Send>>;

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        self.call(encode_append(&rpc), &option, |mut c, r| {
            Box::pin(async move { c.append_entries(r).await })
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        self.call(frame(&rpc, &[]), &option, |mut c, r| {
            Box::pin(async move { c.vote(r).await })
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let head = SnapshotHead {
            vote: rpc.vote,
            meta: rpc.meta,
            offset: rpc.offset,
            done: rpc.done,
        };
        self.call(frame(&head, &rpc.data), &option, |mut c, r| {
            Box::pin(async move { c.install_snapshot(r).await })
        })
        .await
    }
}

/// The replication service of one replica: hands each message to its Raft.
pub struct Service {
    raft: Raft<TypeConfig>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// The service in front of `raft`.
    pub fn new(raft: Raft<TypeConfig>) -> Self {
        Self { raft }
    }
}

fn answer<T: Serialize>(result: &T) -> Result<Response<Frame>, Status> {
    serde_json::to_vec(result)
        .map(|frame| Response::new(Frame { frame }))
        .map_err(|e| Status::internal(e.to_string()))
}

fn bad(e: Error) -> Status {
    Status::invalid_argument(e.to_string())
}

#[tonic::async_trait]
impl Replication for Service {
    async fn append_entries(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let rpc = decode_append(&request.into_inner().frame).map_err(bad)?;
        answer(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let (rpc, _): (VoteRequest<u64>, _) = unframe(&request.into_inner().frame).map_err(bad)?;
        answer(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let frame = request.into_inner().frame;
        let (head, data): (SnapshotHead, _) = unframe(&frame).map_err(bad)?;
        let rpc = InstallSnapshotRequest {
            vote: head.vote,
            meta: head.meta,
            offset: head.offset,
            data: data.to_vec(),
            done: head.done,
        };
        answer(&self.raft.install_snapshot(rpc).await)
    }
}

#[cfg(test)]
mod tests {
    use openraft::EntryPayload;

    use super::*;

    #[test]
    fn an_append_request_round_trips() {
        let rpc = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(4, 2),
            prev_log_id: Some(entry::log_id(3, 1, 9)),
            entries: vec![
                Entry {
                    log_id: entry::log_id(4, 2, 10),
                    payload: EntryPayload::Blank,
                },
                Entry {
                    log_id: entry::log_id(4, 2, 11),
                    payload: EntryPayload::Normal(vec![1, 2, 3]),
                },
            ],
            leader_commit: Some(entry::log_id(3, 1, 8)),
        };
        let back = decode_append(&encode_append(&rpc).unwrap().frame).unwrap();
        assert_eq!(back.vote, rpc.vote);
        assert_eq!(back.prev_log_id, rpc.prev_log_id);
        assert_eq!(back.entries, rpc.entries);
        assert_eq!(back.leader_commit, rpc.leader_commit);
        assert!(decode_append(&[9, 0, 0, 0, b'{']).is_err());
    }
}
