//! `auto_renew`: the broker keeps the messages a push consumer received
//! invisible while that consumer is alive, so slow processing does not
//! cause redelivery, and stops when it is gone, so its messages come back.
//!
//! A receive with `auto_renew` and no invisible duration leases for
//! [`super::ConsumeConfig::auto_renew_invisible`] (default 60 s) and
//! registers the handles under the client's id. Every third of that time
//! the broker extends the lease of each registered handle of a live client
//! to a full period again, keeping the handle (the client acks with it).
//! A client is alive while it has a Telemetry stream open, or within half
//! the period after its last Heartbeat or receive. A handle is dropped
//! once it is acked, redelivered or dead-lettered (renewal finds it
//! stale); all of a client's handles are dropped when it sends
//! NotifyClientTermination or stops being alive. Renewal state is in
//! memory only: after a broker restart the leases simply run out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use crate::error::BrokerError;
use crate::pop::Pop;

#[derive(Debug)]
struct ClientState {
    /// Open Telemetry streams.
    streams: usize,
    last_seen: Instant,
    handles: HashSet<String>,
}

impl ClientState {
    fn new() -> Self {
        Self {
            streams: 0,
            last_seen: Instant::now(),
            handles: HashSet::new(),
        }
    }
}

/// The clients whose deliveries the broker renews.
#[derive(Debug)]
pub struct Renewals {
    period: Duration,
    clients: Mutex<HashMap<String, ClientState>>,
}

impl Renewals {
    /// Renewal with leases of `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<String, ClientState>> {
        self.clients.lock()
    }

    /// The lease of an auto-renewed delivery.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// How often leases are renewed.
    pub fn interval(&self) -> Duration {
        (self.period / 3).max(Duration::from_millis(100))
    }

    /// The client showed it is alive (a Heartbeat).
    pub fn touch(&self, client: &str) {
        if let Some(c) = self.clients().get_mut(client) {
            c.last_seen = Instant::now();
        }
    }

    /// Renews `handles` for `client` from now on.
    pub fn track(&self, client: &str, handles: impl IntoIterator<Item = String>) {
        let mut clients = self.clients();
        let c = clients
            .entry(client.to_owned())
            .or_insert_with(ClientState::new);
        c.last_seen = Instant::now();
        c.handles.extend(handles);
    }

    /// `client` opened a Telemetry stream; it counts as alive until the
    /// guard is dropped.
    pub fn stream_opened(self: &Arc<Self>, client: &str) -> StreamGuard {
        self.clients()
            .entry(client.to_owned())
            .or_insert_with(ClientState::new)
            .streams += 1;
        StreamGuard {
            renewals: Arc::clone(self),
            client: client.to_owned(),
        }
    }

    /// `client` said it is going away: stop renewing its deliveries.
    pub fn terminated(&self, client: &str) {
        if let Some(c) = self.clients().remove(client)
            && !c.handles.is_empty()
        {
            tracing::debug!(
                client,
                handles = c.handles.len(),
                "client terminated; no longer renewing its deliveries"
            );
        }
    }

    /// Handles of live clients; forgets clients that are gone.
    fn live_handles(&self) -> Vec<(String, String)> {
        let grace = self.period / 2;
        let mut clients = self.clients();
        clients.retain(|id, c| {
            let alive = c.streams > 0 || c.last_seen.elapsed() < grace;
            if !alive && !c.handles.is_empty() {
                tracing::info!(client = %id, handles = c.handles.len(),
                    "client gone; its auto-renewed messages come back when their invisibility ends");
            }
            alive
        });
        clients
            .iter()
            .flat_map(|(id, c)| c.handles.iter().map(move |h| (id.clone(), h.clone())))
            .collect()
    }

    fn forget(&self, stale: &[(String, String)]) {
        let mut clients = self.clients();
        for (id, h) in stale {
            if let Some(c) = clients.get_mut(id) {
                c.handles.remove(h);
            }
        }
    }

    /// One round: extends the lease of every live client's handle to a
    /// full period from `now_ms`. Blocking (it writes the journal).
    pub fn renew_once(&self, pop: &Pop, now_ms: i64) {
        let until =
            now_ms.saturating_add(i64::try_from(self.period.as_millis()).unwrap_or(i64::MAX));
        let mut stale = Vec::new();
        for (client, handle) in self.live_handles() {
            match pop.renew(&handle, until) {
                Ok(()) => {}
                Err(BrokerError::InvalidReceiptHandle(_)) => stale.push((client, handle)),
                Err(e) => {
                    tracing::warn!(client = %client, error = %e, "could not renew a delivery; will retry");
                }
            }
        }
        self.forget(&stale);
    }
}

/// Marks a client's Telemetry stream open while alive.
#[derive(Debug)]
pub struct StreamGuard {
    renewals: Arc<Renewals>,
    client: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(c) = self.renewals.clients().get_mut(&self.client) {
            c.streams = c.streams.saturating_sub(1);
            c.last_seen = Instant::now();
        }
    }
}
