//! Sending a target's requests as another user (`Impersonate-User`, as `kubectl --as`):
//! how an admin tries the roles of [`super::rbac`] before handing out a token.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::HeaderValue;

use super::Target;

/// An API client that sends every request as `user`.
#[derive(Clone)]
struct Impersonating {
    inner: kube::Client,
    user: HeaderValue,
}

impl tower::Service<http::Request<kube::client::Body>> for Impersonating {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<kube::client::Body>) -> Self::Future {
        req.headers_mut().insert("impersonate-user", self.user.clone());
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(req).await })
    }
}

impl Target {
    /// This target with every request (its own cluster's and its peers') sent as `user`.
    /// The kubeconfig's user must be allowed to impersonate it (verb `impersonate` on
    /// `users`, or on `serviceaccounts` for `system:serviceaccount:NS:NAME`).
    pub fn acting_as(&self, user: &str) -> Result<Target, String> {
        let user = HeaderValue::from_str(user).map_err(|_| format!("--as {user:?}: not a valid user name"))?;
        let wrap = |c: &kube::Client| kube::Client::new(Impersonating { inner: c.clone(), user: user.clone() }, c.default_namespace().to_string());
        Ok(Target {
            client: wrap(&self.client),
            peers: std::sync::Arc::new(self.peers.iter().map(|(name, c)| (name.clone(), wrap(c))).collect()),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn every_request_carries_the_user_also_to_peers() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            record.lock().unwrap().push(req.headers().get("impersonate-user").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default());
            async { Ok::<_, std::convert::Infallible>(http::Response::builder().status(200).body(kube::client::Body::from(b"{\"major\":\"1\",\"minor\":\"36\",\"gitVersion\":\"v1.36.3\",\"gitCommit\":\"\",\"gitTreeState\":\"\",\"buildDate\":\"\",\"goVersion\":\"\",\"compiler\":\"\",\"platform\":\"\"}".to_vec())).unwrap()) }
        });
        let client = kube::Client::new(service, "default");
        let target = crate::cluster::fake::target_of(client);
        let as_sa = target.acting_as("system:serviceaccount:platform-acceptance:harness").unwrap();
        as_sa.client.apiserver_version().await.unwrap();
        as_sa.peers["infra"].apiserver_version().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), ["system:serviceaccount:platform-acceptance:harness"; 2]);
        assert!(target.acting_as("bad\nname").is_err());
    }
}
