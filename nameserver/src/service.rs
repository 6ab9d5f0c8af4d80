//! `impl TernNameserver for Service`: registration, heartbeats, routes and
//! the broker list, over the [`Registry`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_protocol::nameserver::register_broker_request::Part;
use tern_protocol::nameserver::tern_nameserver_server::TernNameserver;
use tern_protocol::nameserver::{
    BrokerInfo, HeartbeatRequest, HeartbeatResponse, ListBrokersRequest, ListBrokersResponse,
    QueryRouteRequest, QueryRouteResponse, RegisterBrokerRequest, RegisterBrokerResponse,
    UnregisterBrokerRequest, UnregisterBrokerResponse,
};
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{broker_name_in, endpoints_in, group_in, route_out, topic_in};
use crate::registry::{BrokerTable, Registry};

/// Most entries reserved up front for a registration, whatever its header
/// announces (the rest grows as chunks arrive).
const MAX_RESERVE: u64 = 1 << 20;

/// Tern's name server service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    registry: Arc<Registry>,
}

impl Service {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

fn capacity(n: u64) -> usize {
    usize::try_from(n.min(MAX_RESERVE)).unwrap_or(0)
}

#[tonic::async_trait]
impl TernNameserver for Service {
    async fn register_broker(
        &self,
        req: Request<Streaming<RegisterBrokerRequest>>,
    ) -> Result<Response<RegisterBrokerResponse>, Status> {
        let mut stream = req.into_inner();
        let Some(RegisterBrokerRequest {
            part: Some(Part::Header(header)),
        }) = stream.message().await?
        else {
            return Err(Status::invalid_argument(
                "the first message of RegisterBroker must be a header",
            ));
        };
        broker_name_in(&header.broker_name)?;
        endpoints_in(&header.endpoints)?;
        let mut topics = Vec::with_capacity(capacity(header.topic_count));
        let mut groups = Vec::with_capacity(capacity(header.group_count));
        while let Some(msg) = stream.message().await? {
            let Some(Part::Chunk(chunk)) = msg.part else {
                return Err(Status::invalid_argument(
                    "only the first message of RegisterBroker may be a header",
                ));
            };
            for t in chunk.topics {
                topics.push(topic_in(t)?);
            }
            for g in chunk.groups {
                groups.push(group_in(g)?);
            }
        }
        let (topic_count, group_count) = (topics.len() as u64, groups.len() as u64);
        if (topic_count, group_count) != (header.topic_count, header.group_count) {
            return Err(Status::invalid_argument(format!(
                "the header announced {} topics and {} groups; the chunks held {topic_count} \
                 and {group_count}",
                header.topic_count, header.group_count
            )));
        }
        tracing::info!(
            broker = %header.broker_name,
            cluster = %header.cluster,
            endpoints = ?header.endpoints,
            version = header.table_version,
            topics = topic_count,
            groups = group_count,
            "broker registered"
        );
        self.registry.register(
            BrokerTable {
                cluster: header.cluster,
                name: header.broker_name,
                endpoints: header.endpoints,
                version: header.table_version,
                topics,
                groups,
            },
            Instant::now(),
        );
        Ok(Response::new(RegisterBrokerResponse {
            table_version: header.table_version,
            topic_count,
            group_count,
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let req = req.into_inner();
        let register_again =
            self.registry
                .heartbeat(&req.broker_name, req.table_version, Instant::now());
        if register_again {
            tracing::info!(
                broker = %req.broker_name,
                version = req.table_version,
                "heartbeat from a broker whose table is unknown or older: asking it to register"
            );
        }
        Ok(Response::new(HeartbeatResponse { register_again }))
    }

    async fn unregister_broker(
        &self,
        req: Request<UnregisterBrokerRequest>,
    ) -> Result<Response<UnregisterBrokerResponse>, Status> {
        let req = req.into_inner();
        let was_registered = self.registry.unregister(&req.broker_name);
        tracing::info!(
            broker = %req.broker_name,
            cluster = %req.cluster,
            was_registered,
            "broker unregistered; its routes are dropped"
        );
        Ok(Response::new(UnregisterBrokerResponse { was_registered }))
    }

    async fn query_route(
        &self,
        req: Request<QueryRouteRequest>,
    ) -> Result<Response<QueryRouteResponse>, Status> {
        let topic = req.into_inner().topic;
        let brokers = self.registry.route(&topic, Instant::now());
        if brokers.is_empty() {
            return Err(Status::not_found(format!(
                "no live broker serves topic {topic}"
            )));
        }
        Ok(Response::new(QueryRouteResponse {
            brokers: brokers.into_iter().map(route_out).collect(),
        }))
    }

    async fn list_brokers(
        &self,
        _: Request<ListBrokersRequest>,
    ) -> Result<Response<ListBrokersResponse>, Status> {
        let brokers = self
            .registry
            .brokers(Instant::now())
            .into_iter()
            .map(|b| BrokerInfo {
                cluster: b.cluster,
                broker_name: b.name,
                endpoints: b.endpoints,
                table_version: b.version,
                topic_count: b.topics as u64,
                group_count: b.groups as u64,
                last_seen_ms_ago: millis(b.last_seen),
            })
            .collect();
        Ok(Response::new(ListBrokersResponse { brokers }))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
