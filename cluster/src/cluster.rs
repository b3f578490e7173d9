//! Where the cluster is (`etcd://HOST:PORT,HOST:PORT/PREFIX`) and the questions asked of it without holding a
//! lock: who holds a name, who holds anything, and taking a holder's lease away.

use std::sync::Arc;

use crate::backend::{Backend, KeyValue};
use crate::etcd::Gateway;
use crate::{Error, Holder, HolderInfo, Options};

/// The prefix under which locks live when the URL names none.
pub const DEFAULT_PREFIX: &str = "/pidfile";

/// An etcd cluster and the key prefix its locks live under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    endpoints: Vec<String>,
    prefix: String,
}

impl Cluster {
    /// Parses `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`, such as
    /// `etcd://127.0.0.1:12379,127.0.0.1:22379/myprefix`. The prefix defaults to [`DEFAULT_PREFIX`]. Members are
    /// spoken to over plain HTTP (TLS and etcd's authentication are not supported yet).
    pub fn parse(url: &str) -> Result<Cluster, Error> {
        let invalid = |reason: String| Error::InvalidUrl { url: url.to_owned(), reason };
        let Some(rest) = url.strip_prefix("etcd://") else {
            return Err(invalid(match url.split_once("://") {
                Some((scheme, _)) => format!("the scheme is {scheme:?}, expected \"etcd\" (TLS is not supported yet)"),
                None => "expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX]".to_owned(),
            }));
        };
        let (members, path) = rest.split_once('/').map_or((rest, ""), |(members, path)| (members, path));
        let mut endpoints = Vec::new();
        for member in members.split(',') {
            endpoints.push(parse_endpoint(member).map_err(invalid)?);
        }
        let path = path.trim_end_matches('/');
        let prefix = if path.is_empty() { DEFAULT_PREFIX.to_owned() } else { format!("/{path}") };
        if prefix.contains("//") {
            return Err(invalid(format!("the prefix {prefix:?} has an empty part")));
        }
        if prefix.chars().any(|c| c.is_control() || c == '?' || c == '#') {
            return Err(invalid(format!("the prefix {prefix:?} has a control character, '?' or '#'")));
        }
        Ok(Cluster { endpoints, prefix })
    }

    /// The members' `HOST:PORT`s, in the order given.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The prefix of the locks' keys, such as `/pidfile` (no trailing `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of the lock `name`: `{prefix}/{name}`.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// The current holder of `name`, by a linearizable read (etcd's default: answered by a member with quorum),
    /// with its lease's time left. `Err(Error::NoQuorum)` when no member can answer that way; never a stale
    /// answer.
    pub fn holder(&self, name: &str, options: &Options) -> Result<Option<Holder>, Error> {
        holder(&*self.backend(options), self, name)
    }

    /// Every holder under the prefix, by the same rules as [`Cluster::holder`], in key order. Keys further down
    /// (`{prefix}/a/b`) are not locks of this prefix, whose names have no `/`, but of a prefix under it: left out.
    pub fn holders(&self, options: &Options) -> Result<Vec<Holder>, Error> {
        let backend = self.backend(options);
        let under = format!("{}/", self.prefix);
        let mut holders = Vec::new();
        for key_value in backend.range(&under, true)? {
            if key_value.key.strip_prefix(&under).is_some_and(|name| name.contains('/')) {
                continue;
            }
            let mut holder = self.holder_of(key_value);
            holder.ttl_left = backend.time_to_live(holder.lease)?;
            holders.push(holder);
        }
        Ok(holders)
    }

    /// Revokes the lease of the current holder of `name`, deleting the key (for `stop --revoke`): the holder
    /// learns it on its next renewal. Returns the holder whose lease was revoked, if there was one.
    /// [`Error::Unleased`] when the key is bound to no lease (written by hand), which no revocation removes.
    pub fn revoke(&self, name: &str, options: &Options) -> Result<Option<Holder>, Error> {
        let backend = self.backend(options);
        let holder = holder(&*backend, self, name)?;
        if let Some(holder) = &holder {
            if holder.lease == 0 {
                return Err(Error::Unleased { key: holder.key.clone() });
            }
            backend.revoke(holder.lease)?;
        }
        Ok(holder)
    }

    pub(crate) fn backend(&self, options: &Options) -> Arc<dyn Backend> {
        Arc::new(Gateway::new(self.endpoints.clone(), options.request_timeout))
    }

    /// A holder as read from its key, its lease's time left not asked yet.
    pub(crate) fn holder_of(&self, key_value: KeyValue) -> Holder {
        let name = key_value.key.strip_prefix(&self.prefix).and_then(|rest| rest.strip_prefix('/'));
        Holder {
            name: name.unwrap_or(&key_value.key).to_owned(),
            info: serde_json::from_slice::<HolderInfo>(&key_value.value).ok(),
            key: key_value.key,
            token: key_value.create_revision,
            lease: key_value.lease,
            ttl_left: None,
        }
    }
}

/// The current holder of `name` with its lease's time left.
pub(crate) fn holder(backend: &dyn Backend, cluster: &Cluster, name: &str) -> Result<Option<Holder>, Error> {
    check_name(name)?;
    let Some(key_value) = backend.range(&cluster.key(name), false)?.into_iter().next() else {
        return Ok(None);
    };
    let mut holder = cluster.holder_of(key_value);
    holder.ttl_left = backend.time_to_live(holder.lease)?;
    Ok(Some(holder))
}

/// A name makes one key directly under the prefix.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let invalid = |reason: &str| Err(Error::InvalidName { name: name.to_owned(), reason: reason.to_owned() });
    if name.is_empty() {
        invalid("it is empty")
    } else if name.contains('/') {
        invalid("it contains '/'")
    } else if name.chars().any(char::is_control) {
        invalid("it contains a control character")
    } else {
        Ok(())
    }
}

fn parse_endpoint(member: &str) -> Result<String, String> {
    if member.is_empty() {
        return Err("a member's HOST:PORT is empty".to_owned());
    }
    if member.contains('@') {
        return Err(format!("{member:?}: user names and passwords are not supported yet"));
    }
    let Some((host, port)) = member.rsplit_once(':') else {
        return Err(format!("{member:?} has no :PORT"));
    };
    let valid_host = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|address| address.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    };
    if !valid_host {
        return Err(format!("{member:?}: {host:?} is not a host name or address"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(member.to_owned()),
        _ => Err(format!("{member:?}: {port:?} is not a port number (1 to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_names_endpoints_and_prefix() {
        let cluster = Cluster::parse("etcd://127.0.0.1:12379,localhost:22379/my/prefix/").unwrap();
        assert_eq!(cluster.endpoints(), ["127.0.0.1:12379", "localhost:22379"]);
        assert_eq!(cluster.prefix(), "/my/prefix");
        assert_eq!(cluster.key("default-web"), "/my/prefix/default-web");
    }

    #[test]
    fn url_without_prefix_uses_the_default() {
        let cluster = Cluster::parse("etcd://[::1]:2379").unwrap();
        assert_eq!(cluster.endpoints(), ["[::1]:2379"]);
        assert_eq!(cluster.key("a-b"), "/pidfile/a-b");
    }

    #[test]
    fn url_errors_name_the_url_and_the_bad_part() {
        for (url, part) in [
            ("http://127.0.0.1:2379", "\"http\""),
            ("127.0.0.1:2379", "etcd://HOST:PORT"),
            ("etcd://127.0.0.1", "\"127.0.0.1\" has no :PORT"),
            ("etcd://127.0.0.1:99999", "\"99999\" is not a port"),
            ("etcd://127.0.0.1:2379,,h:1", "empty"),
            ("etcd://u:p@h:1", "passwords"),
            ("etcd://h:1/a//b", "empty part"),
            ("etcd://:1", "is not a host"),
        ] {
            let message = Cluster::parse(url).unwrap_err().to_string();
            assert!(message.starts_with(&format!("invalid cluster URL {url:?}: ")), "{message}");
            assert!(message.contains(part), "{message} should mention {part}");
        }
    }

    #[test]
    fn names_with_a_slash_are_refused() {
        assert!(check_name("a/b").unwrap_err().to_string().contains("\"a/b\""));
        assert!(check_name("").is_err());
        assert!(check_name("default-web").is_ok());
    }
}
