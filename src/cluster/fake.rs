//! A fake API server for unit tests: answers every request from a function of its path,
//! and logs the paths asked.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use serde_json::{Value, json};

type Answer = dyn Fn(&str, Option<&str>) -> Option<(u16, Value)> + Send + Sync;

/// `None` from the function is the API server's 404.
#[derive(Clone)]
pub(crate) struct FakeApi {
    answer: Arc<Answer>,
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    pub fn new(answer: impl Fn(&str) -> Option<(u16, Value)> + Send + Sync + 'static) -> Self {
        FakeApi::with_query(move |path, _| answer(path))
    }

    /// A fake whose answers also depend on the query string (`limit`, `continue`).
    pub fn with_query(answer: impl Fn(&str, Option<&str>) -> Option<(u16, Value)> + Send + Sync + 'static) -> Self {
        FakeApi { answer: Arc::new(answer), asked: Arc::default() }
    }

    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    /// A read-only target of cluster `infra` whose client (and only peer) is this fake.
    pub fn target(&self) -> super::Target {
        target_of(self.client())
    }

    /// The paths asked so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("fake lock").clone()
    }
}

impl tower::Service<http::Request<kube::client::Body>> for FakeApi {
    type Response = http::Response<kube::client::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let path = req.uri().path().to_string();
        self.asked.lock().expect("fake lock").push(path.clone());
        let (code, body) = (self.answer)(&path, req.uri().query()).unwrap_or_else(|| {
            (404, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"}))
        });
        let resp = http::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(kube::client::Body::from(serde_json::to_vec(&body).expect("JSON")))
            .expect("response");
        Box::pin(async move { Ok(resp) })
    }
}

/// A read-only target of cluster `infra` whose client, and only peer, is `client`.
pub(crate) fn target_of(client: kube::Client) -> super::Target {
    super::Target {
        client: client.clone(),
        context: "infra".into(),
        peers: Arc::new(std::collections::BTreeMap::from([("infra".to_string(), client)])),
        resolver: Arc::new(super::resolve::SystemDns),
        provenance: Arc::new(super::access::RealClusters),
        writable: false,
    }
}
