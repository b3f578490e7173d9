//! The etcd backend: etcd's JSON gRPC gateway (`/v3/...`) over HTTP.

use std::time::Duration;

use crate::Error;
use crate::backend::{Backend, Created, KeyValue};

/// A client of etcd's JSON gateway, trying each member in turn.
#[derive(Debug)]
pub(crate) struct Gateway {
    endpoints: Vec<String>,
    request_timeout: Duration,
}

impl Gateway {
    pub(crate) fn new(endpoints: Vec<String>, request_timeout: Duration) -> Gateway {
        Gateway { endpoints, request_timeout }
    }

    fn todo(&self) -> Error {
        let _ = self.request_timeout;
        Error::NoQuorum { endpoints: self.endpoints.clone(), detail: "not implemented yet".to_owned() }
    }
}

impl Backend for Gateway {
    fn grant(&self, _ttl: i64) -> Result<(i64, i64), Error> {
        Err(self.todo())
    }
    fn keepalive(&self, _lease: i64) -> Result<i64, Error> {
        Err(self.todo())
    }
    fn create_if_absent(&self, _key: &str, _value: &[u8], _lease: i64) -> Result<Created, Error> {
        Err(self.todo())
    }
    fn range(&self, _key: &str, _prefix: bool) -> Result<Vec<KeyValue>, Error> {
        Err(self.todo())
    }
    fn revoke(&self, _lease: i64) -> Result<(), Error> {
        Err(self.todo())
    }
    fn time_to_live(&self, _lease: i64) -> Result<Option<Duration>, Error> {
        Err(self.todo())
    }
}
