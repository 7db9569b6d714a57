//! Which server URLs a scenario may name: plain `http://` (llamaperf speaks no TLS), and a
//! loopback host unless `allow_remote = true` says measuring another machine is intended.

use std::net::IpAddr;

/// The host of `url` (`http://host[:port][/path]`, IPv6 hosts in brackets), without port.
fn host_of(url: &str) -> Result<&str, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("not an http:// URL (https is not supported)")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    Ok(host)
}

/// Whether `host` is this machine: `localhost` or a loopback IP address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks `url`: an http:// URL with a host, a loopback one unless `allow_remote`.
pub fn check(url: &str, allow_remote: bool) -> Result<(), String> {
    let host = host_of(url)?;
    if !allow_remote && !is_loopback(host) {
        return Err(format!(
            "host '{host}' is not a loopback address; set allow_remote = true in [defaults] to \
             measure a server on another machine"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_pass_and_others_need_allow_remote() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1/v1",
            "http://[::1]:8080",
            "http://127.1.2.3",
        ] {
            assert_eq!(check(ok, false), Ok(()), "{ok}");
        }
        let err = check("http://10.0.0.5:8000", false).unwrap_err();
        assert!(err.contains("allow_remote = true"), "{err}");
        assert_eq!(check("http://10.0.0.5:8000", true), Ok(()));
        assert!(check("https://127.0.0.1", true)
            .unwrap_err()
            .contains("http://"));
        assert!(check("http://:80", true).unwrap_err().contains("no host"));
    }
}
