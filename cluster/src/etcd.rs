//! The etcd backend: etcd's JSON gRPC gateway (`/v3/...`) over plain HTTP. Keys and values travel in base64,
//! 64-bit numbers as JSON strings, and fields holding their type's zero value are left out of answers.
//!
//! Every request goes to the member that answered last, and on to the next when a member cannot answer for the
//! cluster: no connection, no answer within the request timeout, or an answer saying it has no leader or timed
//! out. An answer that is a verdict on the request itself (a bad argument, say) is not retried elsewhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine};
use serde_json::{Value, json};

use crate::Error;
use crate::backend::{Backend, Created, KeyValue};

/// gRPC status codes that mean "this member cannot answer for the cluster now; another may":
/// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE.
const TRY_ANOTHER_MEMBER: [i64; 5] = [4, 8, 10, 13, 14];
/// gRPC's NOT_FOUND, as etcd answers a revocation of a lease it does not know.
const NOT_FOUND: i64 = 5;

/// The longest time one request may be given: the HTTP client adds it to the clock, which a longer one (such as
/// `Duration::MAX`, meaning "no limit") would overflow. A century is no limit either.
const LONGEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A client of etcd's JSON gateway, trying each member in turn.
#[derive(Debug)]
pub(crate) struct Gateway {
    endpoints: Vec<String>,
    agent: ureq::Agent,
    /// The member that answered last, tried first.
    last_good: AtomicUsize,
}

/// Why one member gave no answer.
enum Failure {
    /// It could not answer for the cluster; another member may.
    Unavailable(String),
    /// It answered with an error about the request: gRPC's code, if given, and the message.
    Refused(Option<i64>, String),
}

impl Gateway {
    pub(crate) fn new(endpoints: Vec<String>, request_timeout: Duration) -> Gateway {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(request_timeout.min(LONGEST_REQUEST_TIMEOUT)))
            .http_status_as_error(false)
            // The members are reached directly: an HTTP proxy named in the environment for the web would add a
            // point of failure between the lock and its quorum (and see every request).
            .proxy(None)
            .max_redirects(0)
            .build()
            .new_agent();
        Gateway { endpoints, agent, last_good: AtomicUsize::new(0) }
    }

    /// Posts `body` to `path` on each member in turn until one answers; a refusal is returned as is, with the
    /// member that refused.
    fn call(&self, path: &str, body: &Value) -> Result<Result<Value, Refusal>, Error> {
        let first = self.last_good.load(Ordering::Relaxed);
        let mut unavailable = Vec::new();
        for index in (0..self.endpoints.len()).map(|offset| (first + offset) % self.endpoints.len()) {
            let endpoint = &self.endpoints[index];
            match post(&self.agent, endpoint, path, body) {
                Ok(answer) => {
                    self.last_good.store(index, Ordering::Relaxed);
                    return Ok(Ok(answer));
                }
                Err(Failure::Refused(code, message)) => {
                    self.last_good.store(index, Ordering::Relaxed);
                    return Ok(Err(Refusal { endpoint: endpoint.clone(), code, message }));
                }
                Err(Failure::Unavailable(detail)) => unavailable.push(format!("{endpoint}: {detail}")),
            }
        }
        Err(Error::NoQuorum { endpoints: self.endpoints.clone(), detail: unavailable.join("; ") })
    }

    /// Like `call`, with any refusal turned into an error.
    fn answer(&self, path: &str, body: &Value) -> Result<Answer, Error> {
        self.answer_from(path, self.call(path, body)?)
    }

    fn answer_from(&self, path: &str, result: Result<Value, Refusal>) -> Result<Answer, Error> {
        match result {
            Ok(value) => Ok(Answer { value, path: path.to_owned(), endpoint: self.last_endpoint() }),
            Err(refusal) => Err(refusal.into_error(path)),
        }
    }

    fn last_endpoint(&self) -> String {
        self.endpoints[self.last_good.load(Ordering::Relaxed) % self.endpoints.len()].clone()
    }

    /// Posts `body` to `path` on every member at once, and takes the first answer: for renewals when the member
    /// that answered last did not or has not yet, because a member without a leader (or that is stopped) holds a
    /// request for up to an election timeout, and trying members one after the other would wait that out on each
    /// in turn. The requests still out when an answer comes end by themselves within the request timeout.
    fn call_everywhere(&self, path: &str, body: &Value) -> Result<Result<Value, Refusal>, Error> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let mut unavailable = Vec::new();
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let (sender, agent, endpoint, path, body) =
                (sender.clone(), self.agent.clone(), endpoint.clone(), path.to_owned(), body.clone());
            let spawned = std::thread::Builder::new()
                .name("pidfile-etcd".to_owned())
                .spawn(move || sender.send((index, post(&agent, &endpoint, &path, &body))));
            if let Err(error) = spawned {
                unavailable.push(format!("{}: {error}", self.endpoints[index]));
            }
        }
        drop(sender);
        let mut refusal = None;
        for (index, result) in receiver {
            match result {
                Ok(answer) => {
                    self.last_good.store(index, Ordering::Relaxed);
                    return Ok(Ok(answer));
                }
                Err(Failure::Refused(code, message)) => {
                    refusal = Some(Refusal { endpoint: self.endpoints[index].clone(), code, message });
                }
                Err(Failure::Unavailable(detail)) => unavailable.push(format!("{}: {detail}", self.endpoints[index])),
            }
        }
        match refusal {
            Some(refusal) => Ok(Err(refusal)),
            None => Err(Error::NoQuorum { endpoints: self.endpoints.clone(), detail: unavailable.join("; ") }),
        }
    }
}

/// Posts `body` to `path` on one member.
fn post(agent: &ureq::Agent, endpoint: &str, path: &str, body: &Value) -> Result<Value, Failure> {
    let url = format!("http://{endpoint}{path}");
    let mut response = agent.post(&url).send_json(body).map_err(|error| match error {
        ureq::Error::Timeout(_) => Failure::Unavailable("no answer in time".to_owned()),
        other => Failure::Unavailable(other.to_string()),
    })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|error| Failure::Unavailable(format!("reading the answer: {error}")))?;
    let value: Value = serde_json::from_str(text.trim())
        .map_err(|error| Failure::Refused(None, format!("HTTP {status}, not JSON ({error}): {text:.200}")))?;
    let (code, message) = gateway_error(&value);
    if status == 200 && code.is_none() {
        return Ok(value);
    }
    let message = message.unwrap_or_else(|| format!("HTTP {status}: {text:.200}"));
    let transient = match code {
        Some(code) => TRY_ANOTHER_MEMBER.contains(&code),
        None => status >= 500,
    };
    Err(if transient { Failure::Unavailable(message) } else { Failure::Refused(code, message) })
}

/// A member's answer that the request itself failed.
struct Refusal {
    endpoint: String,
    code: Option<i64>,
    message: String,
}

impl Refusal {
    fn into_error(self, path: &str) -> Error {
        Error::Protocol { endpoint: self.endpoint, detail: format!("{path}: {}", self.message) }
    }
}

/// The gRPC code and message of an error the gateway reports: `{"code": 14, "message": ...}` for calls,
/// `{"error": {"grpc_code": 14, "message": ...}}` for streams (keepalive).
fn gateway_error(value: &Value) -> (Option<i64>, Option<String>) {
    let error = match value.get("error") {
        Some(inner @ Value::Object(_)) => inner,
        Some(Value::String(_)) | None if value.get("code").is_some() => value,
        _ => return (None, None),
    };
    let code = error.get("code").or_else(|| error.get("grpc_code")).and_then(Value::as_i64);
    let message = error.get("message").and_then(Value::as_str).map(str::to_owned);
    (code.filter(|code| *code != 0), message)
}

/// An answer from one member, kept with where it came from for error messages.
struct Answer {
    value: Value,
    path: String,
    endpoint: String,
}

impl Answer {
    fn unexpected(&self, what: &str) -> Error {
        Error::Protocol {
            endpoint: self.endpoint.clone(),
            detail: format!("{}: {what} in {:.300}", self.path, self.value.to_string()),
        }
    }

    /// A 64-bit number field of `object`: etcd sends them as strings, and leaves out zeros.
    fn number(&self, object: &Value, field: &str) -> Result<i64, Error> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::String(text)) => text.parse().map_err(|_| self.unexpected(&format!("{field} {text:?}"))),
            Some(Value::Number(number)) => number.as_i64().ok_or_else(|| self.unexpected(field)),
            Some(_) => Err(self.unexpected(field)),
        }
    }

    fn key_values(&self, range: &Value) -> Result<Vec<KeyValue>, Error> {
        let Some(kvs) = range.get("kvs") else {
            return Ok(Vec::new());
        };
        let kvs = kvs.as_array().ok_or_else(|| self.unexpected("kvs"))?;
        kvs.iter().map(|kv| self.key_value(kv)).collect()
    }

    fn key_value(&self, kv: &Value) -> Result<KeyValue, Error> {
        let bytes = |field: &str| match kv.get(field) {
            None => Ok(Vec::new()),
            Some(Value::String(text)) => BASE64_STANDARD.decode(text).map_err(|_| self.unexpected(field)),
            Some(_) => Err(self.unexpected(field)),
        };
        let create_revision = u64::try_from(self.number(kv, "create_revision")?)
            .map_err(|_| self.unexpected("a negative create_revision"))?;
        Ok(KeyValue {
            key: String::from_utf8_lossy(&bytes("key")?).into_owned(),
            value: bytes("value")?,
            create_revision,
            lease: self.number(kv, "lease")?,
        })
    }
}

fn base64(bytes: &[u8]) -> String {
    BASE64_STANDARD.encode(bytes)
}

/// The end of the range of keys starting with `prefix`: the prefix with its last byte that can be, incremented.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): etcd's "every key from here on".
    vec![0]
}

impl Backend for Gateway {
    fn grant(&self, ttl: i64) -> Result<(i64, i64), Error> {
        let answer = self.answer("/v3/lease/grant", &json!({ "TTL": ttl.to_string(), "ID": "0" }))?;
        if let Some(Value::String(error)) = answer.value.get("error").filter(|error| error.as_str() != Some("")) {
            return Err(answer.unexpected(&format!("error {error:?}")));
        }
        let id = answer.number(&answer.value, "ID")?;
        if id == 0 {
            return Err(answer.unexpected("no lease ID"));
        }
        Ok((id, answer.number(&answer.value, "TTL")?))
    }

    fn keepalive(&self, lease: i64, everywhere: bool) -> Result<i64, Error> {
        let (path, body) = ("/v3/lease/keepalive", json!({ "ID": lease.to_string() }));
        let first = self.last_good.load(Ordering::Relaxed) % self.endpoints.len();
        let first_answer = if everywhere {
            Err(Failure::Unavailable("not asked alone".to_owned()))
        } else {
            post(&self.agent, &self.endpoints[first], path, &body)
        };
        let result = match first_answer {
            Ok(value) => Ok(value),
            Err(Failure::Refused(code, message)) => {
                Err(Refusal { endpoint: self.endpoints[first].clone(), code, message })
            }
            Err(Failure::Unavailable(_)) => self.call_everywhere(path, &body)?,
        };
        let answer = self.answer_from(path, result)?;
        // A lease etcd does not know is answered with no TTL (zero): lost.
        let result = answer.value.get("result").ok_or_else(|| answer.unexpected("no result"))?;
        answer.number(result, "TTL")
    }

    fn create_if_absent(&self, key: &str, value: &[u8], lease: i64) -> Result<Created, Error> {
        let key = base64(key.as_bytes());
        let read = json!({ "request_range": { "key": key } });
        let body = json!({
            "compare": [{ "key": key, "result": "EQUAL", "target": "CREATE", "create_revision": "0" }],
            "success": [{ "request_put": { "key": key, "value": base64(value), "lease": lease.to_string() } }, read],
            "failure": [read],
        });
        let answer = self.answer("/v3/kv/txn", &body)?;
        let succeeded = answer.value.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
        let responses = answer.value.get("responses").and_then(Value::as_array);
        let range = responses
            .and_then(|responses| responses.last())
            .and_then(|last| last.get("response_range"))
            .ok_or_else(|| answer.unexpected("no range in the transaction's answer"))?;
        let found = answer.key_values(range)?.into_iter().next().ok_or_else(|| answer.unexpected("no key"))?;
        if succeeded { Ok(Created::Won { create_revision: found.create_revision }) } else { Ok(Created::Held(found)) }
    }

    fn range(&self, key: &str, prefix: bool) -> Result<Vec<KeyValue>, Error> {
        let body = if prefix {
            json!({ "key": base64(key.as_bytes()), "range_end": base64(&prefix_end(key.as_bytes())) })
        } else {
            json!({ "key": base64(key.as_bytes()) })
        };
        let answer = self.answer("/v3/kv/range", &body)?;
        answer.key_values(&answer.value)
    }

    fn revoke(&self, lease: i64) -> Result<(), Error> {
        match self.call("/v3/lease/revoke", &json!({ "ID": lease.to_string() }))? {
            Ok(_) => Ok(()),
            // Gone already (expired, or revoked by a request that timed out on another member): what was wanted.
            Err(Refusal { code: Some(NOT_FOUND), .. }) => Ok(()),
            Err(refusal) => Err(refusal.into_error("/v3/lease/revoke")),
        }
    }

    fn time_to_live(&self, lease: i64) -> Result<Option<Duration>, Error> {
        let answer = self.answer("/v3/lease/timetolive", &json!({ "ID": lease.to_string() }))?;
        // -1: etcd does not know the lease (it expired or was revoked).
        let ttl = answer.number(&answer.value, "TTL")?;
        Ok(u64::try_from(ttl).ok().map(Duration::from_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_ends_after_the_last_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/pidfile/"), b"/pidfile0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }

    #[test]
    fn gateway_errors_are_read_from_calls_and_streams() {
        let call = json!({ "error": "etcdserver: no leader", "code": 14, "message": "etcdserver: no leader" });
        assert_eq!(gateway_error(&call), (Some(14), Some("etcdserver: no leader".to_owned())));
        let stream = json!({ "error": { "grpc_code": 5, "http_code": 404, "message": "lease not found" } });
        assert_eq!(gateway_error(&stream), (Some(5), Some("lease not found".to_owned())));
        assert_eq!(gateway_error(&json!({ "ID": "1", "TTL": "5" })), (None, None));
        assert_eq!(gateway_error(&json!({ "ID": "1", "error": "" })), (None, None));
    }

    #[test]
    fn request_timeout_too_long_for_the_clock_is_no_panic() {
        let gateway = Gateway::new(vec!["127.0.0.1:1".into()], Duration::MAX);
        assert!(matches!(gateway.range("/pidfile/x", false), Err(Error::NoQuorum { .. })));
    }

    #[test]
    fn no_member_answering_is_no_quorum_naming_every_endpoint() {
        // Ports 1 and 2 on loopback: nothing listens there, so connections are refused at once.
        let gateway = Gateway::new(vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()], Duration::from_secs(1));
        let error = gateway.range("/pidfile/x", false).unwrap_err();
        let Error::NoQuorum { endpoints, detail } = &error else { panic!("{error}") };
        assert_eq!(endpoints, &["127.0.0.1:1", "127.0.0.1:2"]);
        assert!(detail.contains("127.0.0.1:1: ") && detail.contains("127.0.0.1:2: "), "{detail}");
        assert!(
            error.to_string().starts_with("no etcd member answered with quorum (tried 127.0.0.1:1, 127.0.0.1:2): ")
        );
    }
}
