//! A scripted Kubernetes API for tests: the kube client talks to an
//! in-process tower service that records every request and answers with
//! what the test's `answer` function returns.

use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the operator made.
#[derive(Clone, Debug)]
pub struct Call {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The URI path.
    pub path: String,
    /// The URI query, without `?`.
    pub query: String,
    /// The `content-type` header.
    pub content_type: String,
    /// The JSON body, or null.
    pub body: Value,
}

/// The requests recorded so far.
pub type Calls = Arc<Mutex<Vec<Call>>>;

/// A client whose requests go to `answer`; every request is recorded.
pub fn client(answer: impl Fn(&Call) -> Response<Body> + Send + 'static) -> (Client, Calls) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let calls: Calls = Arc::default();
    let log = calls.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await.expect("a request body");
            let header = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok());
            let call = Call {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                content_type: header.unwrap_or_default().to_owned(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            send.send_response(answer(&call));
            log.lock().expect("the log").push(call);
        }
    });
    (Client::new(service, "default"), calls)
}

/// A copy of the requests recorded so far.
pub fn recorded(calls: &Calls) -> Vec<Call> {
    calls.lock().expect("the log").clone()
}

/// 200 with `body`.
pub fn ok(body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from(serde_json::to_vec(body).expect("json")))
        .expect("a response")
}

/// 404 with a Kubernetes `Status`.
pub fn not_found() -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "reason": "NotFound", "code": 404, "message": "not found",
    });
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Body::from(serde_json::to_vec(&body).expect("json")))
        .expect("a response")
}

/// The reasons of the Events the operator created.
pub fn event_reasons(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/events"))
        .map(|c| c.body["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `(status, reason)` of the condition `type_` in a status object.
pub fn condition(status: &Value, type_: &str) -> (String, String) {
    let c = status["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"));
    let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    (field("status"), field("reason"))
}
