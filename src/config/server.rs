//! Validation of the listener sections: `[server]` (addresses, origin, prefix,
//! threads, trusted proxies, pid file, connection limits) and `[admin]`.

use std::path::PathBuf;

use super::{file, parse_duration_secs, Admin, SecretKey, Server, Validator};

impl Validator<'_> {
    pub(super) fn server(&mut self, s: file::ServerFile) -> Option<Server> {
        let listen = self.socket_addr("server.listen", &s.listen);
        let public_url = match s.public_url.as_deref() {
            None => {
                self.problem(
                    "server.public_url",
                    "missing (e.g. \"https://shop.example\")",
                );
                None
            }
            Some(u) => self.public_url(u),
        };
        let upstream = match s.upstream.as_deref() {
            None => {
                self.problem(
                    "server.upstream",
                    "missing (the origin, e.g. \"127.0.0.1:3000\")",
                );
                None
            }
            Some(u) => match (self.resolve)(u) {
                Some(a) => Some((a, u.to_string())),
                _ => {
                    self.problem(
                        "server.upstream",
                        &format!("{u:?} is not a resolvable host:port"),
                    );
                    None
                }
            },
        };
        if s.upstream_tls && s.upstream_sni.is_empty() {
            self.problem("server.upstream_sni", "required when upstream_tls = true");
        }
        let pay_prefix = s.pay_prefix.trim_end_matches('/').to_string();
        let prefix_ok = pay_prefix.len() > 1
            && pay_prefix.starts_with('/')
            && crate::routes::canonicalize(pay_prefix.as_bytes())
                .map(|t| t.path == pay_prefix && !t.hazards.any())
                .unwrap_or(false);
        if !prefix_ok {
            self.problem(
                "server.pay_prefix",
                &format!(
                    "{:?} must be a canonical path like \"/_tollgate\"",
                    s.pay_prefix
                ),
            );
        }
        let threads = match s.threads {
            Some(0) => {
                self.problem("server.threads", "must be at least 1");
                None
            }
            Some(n) => Some(n),
            None => Some(std::thread::available_parallelism().map_or(1, |n| n.get())),
        };
        let grace = match s.grace_period.as_deref() {
            None => Some(10),
            Some(g) => match parse_duration_secs(g) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.problem("server.grace_period", &e);
                    None
                }
            },
        };
        let trusted_proxies = self.networks("server.trusted_proxies", &s.trusted_proxies);
        let limits = self.limits(&s);
        let pid_file = s.pid_file.as_deref().map(str::trim);
        if pid_file == Some("") {
            self.problem("server.pid_file", "must be a file path when set");
        }
        let (public_url, public_https) = public_url?;
        let (upstream, upstream_name) = upstream?;
        if !prefix_ok {
            return None;
        }
        Some(Server {
            listen: listen?,
            public_url,
            public_https,
            upstream,
            upstream_name,
            upstream_tls: s.upstream_tls,
            upstream_sni: s.upstream_sni,
            pay_prefix,
            threads: threads?,
            grace_period_secs: grace?,
            upstream_case_insensitive: s.upstream_case_insensitive,
            trusted_proxies,
            pid_file: pid_file.filter(|p| !p.is_empty()).map(PathBuf::from),
            limits: limits?,
        })
    }

    /// `[server]` connection limits (SPEC section 12).
    fn limits(&mut self, s: &file::ServerFile) -> Option<crate::limits::Limits> {
        let mut secs = |key: &str, v: &Option<String>, default: u64| match v.as_deref() {
            None => Some(default),
            Some(t) => self.duration(key, t),
        };
        let header = secs("server.header_timeout", &s.header_timeout, 10);
        let idle = secs("server.idle_timeout", &s.idle_timeout, 60);
        let max = match s.max_connections {
            Some(0) => {
                self.problem("server.max_connections", "must be at least 1");
                None
            }
            Some(n) if n > 1_000_000 => {
                self.problem(
                    "server.max_connections",
                    "must be at most 1000000 (each needs a file descriptor)",
                );
                None
            }
            n => Some(n.unwrap_or(10_000)),
        };
        Some(crate::limits::Limits {
            header_timeout: std::time::Duration::from_secs(header?),
            idle_timeout: std::time::Duration::from_secs(idle?),
            max_connections: max?,
        })
    }

    /// Parses a list of CIDR networks, a problem for each one that is not.
    fn networks(&mut self, key: &str, list: &[String]) -> Vec<ipnet::IpNet> {
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            match c.trim().parse::<ipnet::IpNet>() {
                Ok(n) => out.push(n.trunc()),
                Err(_) => self.problem(
                    &format!("{key}[{i}]"),
                    &format!("{c:?} is not a CIDR network like \"10.0.0.0/8\""),
                ),
            }
        }
        out
    }

    fn public_url(&mut self, u: &str) -> Option<(String, bool)> {
        let (https, rest) = if let Some(r) = u.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = u.strip_prefix("http://") {
            (false, r)
        } else {
            self.problem(
                "server.public_url",
                &format!("{u:?} must start with http:// or https://"),
            );
            return None;
        };
        let rest = rest.trim_end_matches('/');
        let bad =
            rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '"', '<', '>', '\'', '\\']);
        if bad {
            self.problem(
                "server.public_url",
                &format!("{u:?} must be scheme://host[:port] with no path, query or credentials"),
            );
            return None;
        }
        Some((
            format!("{}://{rest}", if https { "https" } else { "http" }),
            https,
        ))
    }

    pub(super) fn admin(
        &mut self,
        a: file::AdminFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Admin> {
        let listen = self.socket_addr("admin.listen", &a.listen);
        let mut allow = Vec::new();
        for (i, c) in a.allow.iter().enumerate() {
            match c.parse::<ipnet::IpNet>() {
                Ok(n) => allow.push(n),
                Err(_) => self.problem(
                    &format!("admin.allow[{i}]"),
                    &format!("{c:?} is not a CIDR network like \"127.0.0.1/32\""),
                ),
            }
        }
        let token = a.token_env.as_deref().and_then(|name| {
            env(name)
                .filter(|t| !t.is_empty())
                .map(|t| SecretKey(t.into_bytes()))
        });
        Some(Admin {
            listen: listen?,
            allow,
            token,
        })
    }
}
