//! The broker in a cluster: registration with the name servers, heartbeats,
//! and routes across all brokers.
//!
//! For each configured name server one task (see [`spawn_registration`])
//! registers the whole topic and group table at start, registers again
//! whenever [`Registry::version`] moves or a heartbeat reply asks for it
//! (the name server restarted or expired the broker), and heartbeats every
//! `heartbeat_interval`, and unregisters when the broker shuts down
//! gracefully. Name servers share nothing and their tasks are
//! independent: one being down or slow never holds up the others.
//!
//! The table travels as a stream: a header, then chunks of at most
//! [`CHUNK_ENTRIES`] topics or groups, each far below gRPC's 4 MiB message
//! limit whatever the names, so any number of topics registers.
//!
//! [`ClusterRoutes`] answers the broker's own QueryRoute across all
//! brokers: it asks the name servers in turn (one second each), keeps the
//! answer for [`ROUTE_CACHE_TTL`], and says `None` when none answers, so
//! the caller can fall back to the local route.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tern_model::TopicName;
use tern_protocol::nameserver::register_broker_request::Part;
use tern_protocol::nameserver::tern_nameserver_client::TernNameserverClient;
use tern_protocol::nameserver::{
    BrokerHeader, HeartbeatRequest, QueryRouteRequest, RegisterBrokerRequest, TableChunk,
    UnregisterBrokerRequest,
};
use tern_protocol::{admin, convert};
use tern_tls::ClientTls;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::error::{BrokerError, Result};
use crate::meta::{Registry, Snapshot, TopicConfig};
use crate::wire::topic_out;

/// Topics or groups per registration chunk: 4,096 of the longest names
/// (a few hundred bytes each) stay under 2 MiB.
pub const CHUNK_ENTRIES: usize = 4096;
/// How long a route learnt from the name servers is reused.
pub const ROUTE_CACHE_TTL: Duration = Duration::from_secs(2);
/// Cached routes past which stale ones are dropped.
const CACHE_PRUNE_AT: usize = 4096;
/// How often each task checks the registry version.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Time allowed to connect to a name server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for a registration (a large table takes a while).
const REGISTER_TIMEOUT: Duration = Duration::from_secs(120);
/// Time allowed for a heartbeat or a route query.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a shutdown waits for the tasks to unregister.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait between failed registrations.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// What a broker tells its name servers.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub cluster: String,
    pub broker_name: String,
    /// `host:port` where clients reach this broker.
    pub endpoints: Vec<String>,
    /// `host:port` of every name server.
    pub nameservers: Vec<String>,
    pub heartbeat_interval: Duration,
    /// How the name servers are dialled: plaintext when `None`.
    pub tls: Option<ClientTls>,
}

/// The registration tasks of a broker that has name servers.
#[derive(Debug)]
pub struct Membership {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Membership {
    /// Starts registering `cfg.name` at `advertised` with every name
    /// server of `cfg`; `None` if it has none.
    pub fn start(
        cfg: &crate::BrokerConfig,
        advertised: &str,
        registry: Arc<Registry>,
    ) -> Result<Option<Self>> {
        if cfg.nameservers.is_empty() {
            return Ok(None);
        }
        if advertised.starts_with("0.0.0.0:") || advertised.starts_with("[::]:") {
            tracing::warn!(
                %advertised,
                "registering an unspecified address with the name servers: clients cannot \
                 reach it; set advertised_address"
            );
        }
        let (stop, stopped) = watch::channel(false);
        let cluster = ClusterConfig {
            cluster: cfg.cluster.clone(),
            broker_name: cfg.name.clone(),
            endpoints: vec![advertised.to_owned()],
            nameservers: cfg.nameservers.clone(),
            heartbeat_interval: cfg.heartbeat_interval,
            tls: nameserver_tls(cfg)?,
        };
        let tasks = spawn_registration(cluster, registry, stopped)?;
        Ok(Some(Self { stop, tasks }))
    }

    /// Stops the registration tasks, which unregister from their name
    /// servers (at most a second each, all at once), and waits for them.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        // A task may be in the middle of a long registration with a slow
        // name server: shutting down does not wait for it.
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// Cluster-wide routes for the broker of `cfg` (its name servers, dialled
/// as it says); `None` without any name server.
pub fn routes(cfg: &crate::BrokerConfig) -> Result<Option<Arc<ClusterRoutes>>> {
    if cfg.nameservers.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(ClusterRoutes::new(
        &cfg.nameservers,
        nameserver_tls(cfg)?,
    )?)))
}

/// The TLS the name servers are dialled with, from the broker's settings.
fn nameserver_tls(cfg: &crate::BrokerConfig) -> Result<Option<ClientTls>> {
    Ok(match &cfg.nameserver_tls {
        Some(tls) => Some(ClientTls::new(tls.clone())?),
        None => None,
    })
}

/// A lazily connected client of the name server at `address`, over TLS
/// when `tls` is given.
fn client(address: &str, tls: Option<&ClientTls>) -> Result<TernNameserverClient<Channel>> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| BrokerError::Invalid(format!("name server address {address}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT);
    Ok(TernNameserverClient::new(match tls {
        Some(tls) => endpoint.connect_with_connector_lazy(tls.connector()),
        None => endpoint.connect_lazy(),
    }))
}

/// Starts one registration task per name server; they run until
/// `shutdown` turns true.
pub fn spawn_registration(
    cfg: ClusterConfig,
    registry: Arc<Registry>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>> {
    let cfg = Arc::new(cfg);
    let mut tasks = Vec::new();
    for address in &cfg.nameservers {
        let task = Member {
            address: address.clone(),
            client: client(address, cfg.tls.as_ref())?,
            cfg: Arc::clone(&cfg),
            registry: Arc::clone(&registry),
        };
        tasks.push(tokio::spawn(task.run(shutdown.clone())));
    }
    Ok(tasks)
}

/// This broker's membership with one name server.
struct Member {
    address: String,
    client: TernNameserverClient<Channel>,
    cfg: Arc<ClusterConfig>,
    registry: Arc<Registry>,
}

impl Member {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut registered: Option<u64> = None;
        let mut last_beat = Instant::now();
        let mut failures = 0_u32;
        loop {
            let mut wait = CHECK_INTERVAL;
            if registered != Some(self.registry.version()) {
                match self.register().await {
                    Ok(version) => {
                        registered = Some(version);
                        last_beat = Instant::now();
                        failures = 0;
                    }
                    Err(e) => {
                        registered = None;
                        failures = failures.saturating_add(1);
                        // Say it once, then every tenth time.
                        if failures % 10 == 1 {
                            tracing::warn!(
                                nameserver = %self.address, error = %e, failures,
                                "cannot register with the name server; retrying"
                            );
                        }
                        wait = retry_delay(failures, self.cfg.heartbeat_interval);
                    }
                }
            } else if last_beat.elapsed() >= self.cfg.heartbeat_interval {
                last_beat = Instant::now();
                match self.heartbeat(registered.unwrap_or_default()).await {
                    Ok(true) => {
                        tracing::info!(
                            nameserver = %self.address,
                            "the name server asks for a new registration"
                        );
                        registered = None;
                        wait = Duration::ZERO;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(
                        nameserver = %self.address, error = %e, "heartbeat failed"
                    ),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        self.unregister().await;
    }

    /// Tells the name server this broker is leaving, so its routes go at
    /// once rather than after the expiry.
    async fn unregister(&mut self) {
        let mut req = tonic::Request::new(UnregisterBrokerRequest {
            cluster: self.cfg.cluster.clone(),
            broker_name: self.cfg.broker_name.clone(),
        });
        req.set_timeout(CALL_TIMEOUT);
        match self.client.unregister_broker(req).await {
            Ok(_) => {
                tracing::info!(nameserver = %self.address, "unregistered from the name server")
            }
            Err(e) => tracing::warn!(
                nameserver = %self.address, error = %e,
                "could not unregister; the name server will expire this broker"
            ),
        }
    }

    /// Registers the current table; returns its version.
    async fn register(&mut self) -> Result<u64> {
        let registry = Arc::clone(&self.registry);
        let snapshot = tokio::task::spawn_blocking(move || registry.snapshot())
            .await
            .map_err(|e| BrokerError::Failed(format!("snapshot task failed: {e}")))?;
        let version = snapshot.version;
        let (topics, groups) = (snapshot.topics.len(), snapshot.groups.len());
        let started = Instant::now();
        let parts = registration(&self.cfg, snapshot);
        let mut req = tonic::Request::new(tokio_stream::iter(parts));
        req.set_timeout(REGISTER_TIMEOUT);
        self.client
            .register_broker(req)
            .await
            .map_err(|s| BrokerError::Failed(format!("registration refused: {s}")))?;
        tracing::info!(
            nameserver = %self.address, version, topics, groups, took = ?started.elapsed(),
            "registered with the name server"
        );
        Ok(version)
    }

    /// Sends a heartbeat; returns whether the name server asks for a new
    /// registration.
    async fn heartbeat(&mut self, version: u64) -> Result<bool> {
        let mut req = tonic::Request::new(HeartbeatRequest {
            cluster: self.cfg.cluster.clone(),
            broker_name: self.cfg.broker_name.clone(),
            table_version: version,
        });
        req.set_timeout(CALL_TIMEOUT);
        let reply = self
            .client
            .heartbeat(req)
            .await
            .map_err(|s| BrokerError::Failed(format!("heartbeat refused: {s}")))?;
        Ok(reply.into_inner().register_again)
    }
}

/// The wait after `failures` failed registrations in a row: between half
/// of [`retry_ceiling`] and all of it, at random ("equal jitter"), so that
/// brokers that lost the same name server do not all come back to it in
/// step.
fn retry_delay(failures: u32, heartbeat: Duration) -> Duration {
    // Without OS randomness, the ceiling: slower, never sooner.
    let random = getrandom::u64().unwrap_or(u64::MAX);
    equal_jitter(retry_ceiling(failures, heartbeat), random)
}

/// Doubling from 500 ms, at most the heartbeat interval or 10 s.
fn retry_ceiling(failures: u32, heartbeat: Duration) -> Duration {
    let delay = CHECK_INTERVAL.saturating_mul(1 << failures.min(6));
    delay
        .min(heartbeat.max(CHECK_INTERVAL))
        .min(MAX_RETRY_DELAY)
}

/// Half of `ceiling`, plus a share of the other half that `random` picks
/// uniformly (to the nanosecond): `0` gives the half, `u64::MAX` the whole.
fn equal_jitter(ceiling: Duration, random: u64) -> Duration {
    let half = ceiling / 2;
    let span = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
    let extra = if random == u64::MAX || span == u64::MAX {
        span
    } else {
        random % (span + 1)
    };
    half + Duration::from_nanos(extra)
}

/// The messages of one registration: the header, then the chunks.
fn registration(cfg: &ClusterConfig, snapshot: Snapshot) -> Vec<RegisterBrokerRequest> {
    let header = Part::Header(BrokerHeader {
        cluster: cfg.cluster.clone(),
        broker_name: cfg.broker_name.clone(),
        endpoints: cfg.endpoints.clone(),
        table_version: snapshot.version,
        topic_count: snapshot.topics.len() as u64,
        group_count: snapshot.groups.len() as u64,
    });
    let mut parts = vec![header];
    for chunk in snapshot.topics.chunks(CHUNK_ENTRIES) {
        parts.push(Part::Chunk(TableChunk {
            topics: chunk.iter().map(topic_out).collect(),
            groups: Vec::new(),
        }));
    }
    for chunk in snapshot.groups.chunks(CHUNK_ENTRIES) {
        parts.push(Part::Chunk(TableChunk {
            topics: Vec::new(),
            groups: chunk
                .iter()
                .map(|g| admin::Group {
                    name: g.name().to_string(),
                    fifo: g.fifo(),
                    max_retries: i32::try_from(g.max_retries()).unwrap_or(i32::MAX),
                })
                .collect(),
        }));
    }
    parts
        .into_iter()
        .map(|p| RegisterBrokerRequest { part: Some(p) })
        .collect()
}

/// A topic as another broker serves it, validated.
fn topic_in(t: admin::Topic) -> Result<TopicConfig> {
    let name = TopicName::new(t.name)?;
    let queues = u32::try_from(t.queue_count)
        .map_err(|_| BrokerError::Invalid(format!("topic {name}: negative queue count")))?;
    let message_type = convert::message_type(t.message_type)
        .map_err(|_| BrokerError::Invalid(format!("topic {name}: unknown message type")))?
        .unwrap_or_default();
    let permission = convert::permission(t.permission)
        .map_err(|_| BrokerError::Invalid(format!("topic {name}: unknown permission")))?
        .unwrap_or_default();
    TopicConfig::new(name, queues, message_type, permission)
}

/// One broker's part of a topic's route, as the name servers know it.
#[derive(Debug, Clone)]
pub struct RemoteRoute {
    pub broker: String,
    /// `host:port` where clients reach that broker.
    pub endpoints: Vec<String>,
    pub topic: TopicConfig,
}

/// A route and when it was learnt.
type Cached = (Instant, Arc<Vec<RemoteRoute>>);

/// Routes across all brokers, from the name servers, briefly cached.
#[derive(Debug)]
pub struct ClusterRoutes {
    nameservers: Vec<(String, TernNameserverClient<Channel>)>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl ClusterRoutes {
    /// Routes from the name servers at `nameservers` (`host:port`),
    /// dialled over TLS when `tls` is given.
    pub fn new(nameservers: &[String], tls: Option<ClientTls>) -> Result<Self> {
        Ok(Self {
            nameservers: nameservers
                .iter()
                .map(|a| Ok((a.clone(), client(a, tls.as_ref())?)))
                .collect::<Result<_>>()?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Every broker's part of `topic`'s route, by broker name (empty if
    /// the name servers know no broker serving it); `None` if no name
    /// server answered.
    pub async fn route(&self, topic: &str) -> Option<Arc<Vec<RemoteRoute>>> {
        if let Some((at, routes)) = self.cached(topic)
            && at.elapsed() < ROUTE_CACHE_TTL
        {
            return Some(routes);
        }
        let mut answered = false;
        let mut found = Vec::new();
        for (address, client) in &self.nameservers {
            let mut client = client.clone();
            let mut req = tonic::Request::new(QueryRouteRequest {
                topic: topic.to_owned(),
            });
            req.set_timeout(CALL_TIMEOUT);
            match client.query_route(req).await {
                Ok(reply) => {
                    answered = true;
                    found = reply
                        .into_inner()
                        .brokers
                        .into_iter()
                        .filter_map(|b| {
                            let topic = topic_in(b.topic?).ok()?;
                            Some(RemoteRoute {
                                broker: b.broker_name,
                                endpoints: b.endpoints,
                                topic,
                            })
                        })
                        .collect();
                    break;
                }
                // This one knows no broker for it; another may (it may
                // have restarted and not heard from every broker yet).
                Err(s) if s.code() == tonic::Code::NotFound => answered = true,
                Err(s) => {
                    tracing::debug!(nameserver = %address, error = %s, "route query failed");
                }
            }
        }
        if !answered {
            return None;
        }
        let routes = Arc::new(found);
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_PRUNE_AT {
            cache.retain(|_, (at, _)| at.elapsed() < ROUTE_CACHE_TTL);
        }
        cache.insert(topic.to_owned(), (Instant::now(), Arc::clone(&routes)));
        Some(routes)
    }

    fn cached(&self, topic: &str) -> Option<Cached> {
        let cache = self.cache.lock();
        cache.get(topic).map(|(at, r)| (*at, Arc::clone(r)))
    }
}

#[cfg(test)]
mod tests {
    use tern_model::GroupName;

    use super::*;
    use crate::meta::{GroupConfig, MessageType, Permission};

    #[test]
    fn registration_is_chunked_and_round_trips() {
        let topics: Vec<TopicConfig> = (0..10_000)
            .map(|i| {
                TopicConfig::new(
                    TopicName::new(format!("{i:0>127}")).unwrap(),
                    8,
                    MessageType::Mixed,
                    Permission::Read,
                )
                .unwrap()
            })
            .collect();
        let groups = vec![GroupConfig::new(GroupName::new("g").unwrap(), true, 3).unwrap()];
        let cfg = ClusterConfig {
            cluster: "c".to_owned(),
            broker_name: "b".to_owned(),
            endpoints: vec!["127.0.0.1:1".to_owned()],
            nameservers: Vec::new(),
            heartbeat_interval: Duration::from_secs(30),
            tls: None,
        };
        let parts = registration(
            &cfg,
            Snapshot {
                version: 7,
                topics: topics.clone(),
                groups,
            },
        );
        // A header, three topic chunks, one group chunk.
        assert_eq!(parts.len(), 5);
        let Some(Part::Header(h)) = &parts[0].part else {
            panic!("header first");
        };
        assert_eq!(
            (h.table_version, h.topic_count, h.group_count),
            (7, 10_000, 1)
        );
        let mut back = Vec::new();
        for p in &parts[1..] {
            let Some(Part::Chunk(c)) = &p.part else {
                panic!("chunks after the header");
            };
            // Far below the 4 MiB limit, with the longest names.
            let bytes = prost::Message::encoded_len(p);
            assert!(bytes < 2 << 20, "{bytes} bytes");
            back.extend(c.topics.iter().cloned().map(|t| topic_in(t).unwrap()));
        }
        assert_eq!(back, topics);
    }

    #[test]
    fn retry_ceilings_grow_and_stay_bounded() {
        let hb = Duration::from_secs(30);
        assert_eq!(retry_ceiling(1, hb), Duration::from_secs(1));
        assert_eq!(retry_ceiling(2, hb), Duration::from_secs(2));
        assert_eq!(retry_ceiling(20, hb), MAX_RETRY_DELAY);
        assert_eq!(
            retry_ceiling(20, Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn jitter_spans_the_upper_half() {
        let c = Duration::from_secs(2);
        assert_eq!(equal_jitter(c, 0), Duration::from_secs(1));
        assert_eq!(equal_jitter(c, u64::MAX), c);
        assert_eq!(equal_jitter(c, 1_000_000_000), c);
        assert_eq!(equal_jitter(c, 1_000_000_001), Duration::from_secs(1));
        assert_eq!(equal_jitter(c, 250_000_000), Duration::from_millis(1250));
        assert_eq!(equal_jitter(Duration::ZERO, 12345), Duration::ZERO);
        let odd = Duration::from_nanos(3);
        assert_eq!(equal_jitter(odd, 0), Duration::from_nanos(1));
        assert_eq!(equal_jitter(odd, u64::MAX), odd);
    }

    /// With real randomness: every delay lies in the upper half of its
    /// ceiling, so while the ceiling doubles each delay is at least the
    /// one before; and the delays do vary.
    #[test]
    fn retry_delays_stay_in_their_bounds_and_grow() {
        for hb in [Duration::from_secs(30), Duration::from_secs(1)] {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..200 {
                let mut previous = Duration::ZERO;
                for failures in 1..=20 {
                    let ceiling = retry_ceiling(failures, hb);
                    let delay = retry_delay(failures, hb);
                    assert!(
                        ceiling / 2 <= delay && delay <= ceiling,
                        "{failures} failures: {delay:?} outside [{:?}, {ceiling:?}]",
                        ceiling / 2
                    );
                    if ceiling == retry_ceiling(failures - 1, hb) * 2 {
                        assert!(delay >= previous, "{failures}: {delay:?} < {previous:?}");
                    }
                    assert!(delay <= MAX_RETRY_DELAY && delay <= hb.max(CHECK_INTERVAL));
                    previous = delay;
                    seen.insert(delay);
                }
            }
            assert!(seen.len() > 100, "only {} distinct delays", seen.len());
        }
    }
}
