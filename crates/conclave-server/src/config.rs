//! The server's configuration: a TOML file whose every key has a default, so
//! that no file at all means the embedded defaults (host `localhost`, group
//! chat at `conference.localhost`, client listener on 127.0.0.1:5222, data
//! under `./data`). [`Config::validate`] lists every problem with the key it
//! concerns; `conclave check` prints them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One problem found in a configuration, with the key it concerns
/// (dotted path, e.g. `listener[0].addr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn problem(key: impl Into<String>, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    /// Virtual hosts with their own TLS certificate (in addition to `server.hosts`).
    pub host: Vec<HostSection>,
    /// Client listeners; none given = one on 127.0.0.1:5222.
    pub listener: Vec<ListenerSection>,
    pub storage: StorageSection,
    pub muc: MucSection,
    pub limits: LimitsSection,
    /// Instant-messaging features (vCards, private XML, block lists, version).
    pub im: ImSection,
    /// Contact addresses published in the server's disco#info (XEP-0157).
    pub contact: ContactSection,
    /// External services announced with XEP-0215.
    pub external_service: Vec<ExternalServiceSection>,
    /// The SOCKS5 bytestreams proxy (XEP-0065).
    pub proxy65: Proxy65Section,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Virtual hosts. Absent: `localhost` (unless `[[host]]` tables name some).
    pub hosts: Option<Vec<String>>,
    /// Server administrators (bare JIDs); they own every group-chat room.
    pub admins: Vec<String>,
    /// Where the SQLite database and generated certificates live.
    pub data_dir: PathBuf,
    /// Refuse authentication before TLS.
    pub require_encryption: bool,
    /// Allow SASL PLAIN without TLS, for loopback peers only.
    pub allow_plaintext_auth: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            hosts: None,
            admins: Vec::new(),
            data_dir: PathBuf::from("./data"),
            require_encryption: true,
            allow_plaintext_auth: false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostSection {
    pub name: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerSection {
    /// `IP:port`; port 0 picks a free port.
    pub addr: String,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS.
    pub direct_tls: bool,
}

impl Default for ListenerSection {
    fn default() -> Self {
        ListenerSection {
            addr: "127.0.0.1:5222".to_owned(),
            direct_tls: false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// SQLite path (or `sqlite:` URL) or `postgres://` URL. Absent:
    /// `<data_dir>/conclave.sqlite`.
    pub url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MucSection {
    /// Group-chat domain. Absent: `conference.<first host>`.
    pub domain: Option<String>,
    /// `local-users` (default), `anyone` or `admins`.
    pub room_creation: String,
    pub max_history: usize,
    /// 0: no limit.
    pub max_occupants: usize,
}

impl Default for MucSection {
    fn default() -> Self {
        MucSection {
            domain: None,
            room_creation: "local-users".to_owned(),
            max_history: 20,
            max_occupants: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub max_stanza_bytes: usize,
    pub max_depth: usize,
    pub max_connections_per_ip: usize,
    /// Offline messages kept per account.
    pub max_offline_messages: usize,
    /// Stanzas queued for one session before it is disconnected as too slow.
    pub session_queue: usize,
    /// Stanzas queued for one group-chat room.
    pub room_queue: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_stanza_bytes: 262_144,
            max_depth: 64,
            max_connections_per_ip: 32,
            max_offline_messages: 1000,
            session_queue: 2048,
            room_queue: 4096,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImSection {
    /// Disclose the operating system in software version answers (XEP-0092).
    pub version_show_os: bool,
    /// Largest vCard (XEP-0054) an account may store, in bytes.
    pub max_vcard_bytes: usize,
    /// Largest private XML item (XEP-0049), in bytes.
    pub max_private_bytes: usize,
    /// Most private XML items per account.
    pub max_private_items: usize,
    /// Most JIDs on one block list (XEP-0191).
    pub max_blocklist_items: usize,
}

impl Default for ImSection {
    fn default() -> Self {
        ImSection {
            version_show_os: false,
            max_vcard_bytes: 65_536,
            max_private_bytes: 65_536,
            max_private_items: 256,
            max_blocklist_items: 1000,
        }
    }
}

/// XEP-0157 addresses (URIs such as `mailto:` or `xmpp:`), by role.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactSection {
    pub abuse: Vec<String>,
    pub admin: Vec<String>,
    pub feedback: Vec<String>,
    pub sales: Vec<String>,
    pub security: Vec<String>,
    pub status: Vec<String>,
    pub support: Vec<String>,
}

impl ContactSection {
    /// The XEP-0157 form fields (`<role>-addresses`) that have values.
    pub fn fields(&self) -> Vec<(String, &[String])> {
        [
            ("abuse", &self.abuse),
            ("admin", &self.admin),
            ("feedback", &self.feedback),
            ("sales", &self.sales),
            ("security", &self.security),
            ("status", &self.status),
            ("support", &self.support),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (format!("{k}-addresses"), v.as_slice()))
        .collect()
    }
}

/// One XEP-0215 external service (STUN/TURN server, ...).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalServiceSection {
    /// Service type: `stun`, `turn`, `turns`, `ftp`, ...
    #[serde(rename = "type")]
    pub type_: String,
    pub host: String,
    pub port: Option<u16>,
    /// `udp` or `tcp`.
    pub transport: Option<String>,
    pub name: Option<String>,
    /// Fixed credentials handed to local users (marks the service restricted).
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The SOCKS5 bytestreams proxy (XEP-0065), a component at its own domain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Proxy65Section {
    pub enabled: bool,
    /// The component's domain. Absent: `proxy.<first host>`.
    pub domain: Option<String>,
    /// Where the SOCKS5 listener binds.
    pub addr: String,
    /// The host clients are told to connect to. Absent: the listener's IP
    /// (or the component's domain when it listens on every address).
    pub public_host: Option<String>,
    /// The port clients are told. Absent: the listener's port.
    pub public_port: Option<u16>,
    /// Who may use it (JIDs or domains). Empty: the local users.
    pub acl: Vec<String>,
    /// Anyone may use it (ignored when `acl` is set).
    pub open_access: bool,
    /// Transfers one user may have running at once.
    pub max_transfers_per_user: usize,
    /// Bytes per second per transfer and direction; 0: no limit.
    pub max_bytes_per_second: u64,
    /// Seconds a connection may wait to be paired and activated.
    pub activation_timeout: u64,
    /// Seconds a transfer may go without a byte in either direction.
    pub idle_timeout: u64,
}

impl Default for Proxy65Section {
    fn default() -> Self {
        Proxy65Section {
            enabled: true,
            domain: None,
            addr: "127.0.0.1:5000".to_owned(),
            public_host: None,
            public_port: None,
            acl: Vec::new(),
            open_access: false,
            max_transfers_per_user: 5,
            max_bytes_per_second: 0,
            activation_timeout: 60,
            idle_timeout: 300,
        }
    }
}

/// Keys the file may contain, for reporting every unknown key at once.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "server",
            "host",
            "listener",
            "storage",
            "muc",
            "limits",
            "im",
            "contact",
            "external_service",
            "proxy65",
        ],
    ),
    (
        "proxy65",
        &[
            "enabled",
            "domain",
            "addr",
            "public_host",
            "public_port",
            "acl",
            "open_access",
            "max_transfers_per_user",
            "max_bytes_per_second",
            "activation_timeout",
            "idle_timeout",
        ],
    ),
    (
        "im",
        &[
            "version_show_os",
            "max_vcard_bytes",
            "max_private_bytes",
            "max_private_items",
            "max_blocklist_items",
        ],
    ),
    (
        "contact",
        &[
            "abuse", "admin", "feedback", "sales", "security", "status", "support",
        ],
    ),
    (
        "external_service",
        &[
            "type",
            "host",
            "port",
            "transport",
            "name",
            "username",
            "password",
        ],
    ),
    (
        "server",
        &[
            "hosts",
            "admins",
            "data_dir",
            "require_encryption",
            "allow_plaintext_auth",
        ],
    ),
    ("host", &["name", "tls_cert", "tls_key"]),
    ("listener", &["addr", "direct_tls"]),
    ("storage", &["url"]),
    (
        "muc",
        &["domain", "room_creation", "max_history", "max_occupants"],
    ),
    (
        "limits",
        &[
            "max_stanza_bytes",
            "max_depth",
            "max_connections_per_ip",
            "max_offline_messages",
            "session_queue",
            "room_queue",
        ],
    ),
];

fn unknown_keys(value: &toml::Value) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let Some(root) = value.as_table() else {
        return out;
    };
    let known = |section: &str| {
        KNOWN_KEYS
            .iter()
            .find(|(s, _)| *s == section)
            .map(|(_, k)| *k)
    };
    for (key, v) in root {
        let Some(section_keys) = known(key) else {
            out.push(problem(key.clone(), "unknown key"));
            continue;
        };
        let check_table = |path: String, t: &toml::Table, out: &mut Vec<ConfigProblem>| {
            for k in t.keys() {
                if !section_keys.contains(&k.as_str()) {
                    out.push(problem(format!("{path}.{k}"), "unknown key"));
                }
            }
        };
        match v {
            toml::Value::Table(t) => check_table(key.clone(), t, &mut out),
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(t) = item.as_table() {
                        check_table(format!("{key}[{i}]"), t, &mut out);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Drops the keys [`unknown_keys`] reports.
fn remove_unknown(value: &mut toml::Value) {
    let Some(root) = value.as_table_mut() else {
        return;
    };
    let known = |section: &str| {
        KNOWN_KEYS
            .iter()
            .find(|(s, _)| *s == section)
            .map(|(_, k)| *k)
    };
    root.retain(|k, _| known(k).is_some());
    for (key, v) in root.iter_mut() {
        let Some(section_keys) = known(key) else {
            continue;
        };
        let clean = |t: &mut toml::Table| {
            t.retain(|k, _| section_keys.iter().any(|s| *s == AsRef::<str>::as_ref(k)))
        };
        match v {
            toml::Value::Table(t) => clean(t),
            toml::Value::Array(items) => {
                for item in items {
                    if let Some(t) = item.as_table_mut() {
                        clean(t);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Config {
    /// Parses a configuration. Syntax errors, wrong types and unknown keys
    /// are returned as problems (every unknown key, each with its path).
    pub fn from_toml_str(text: &str) -> Result<Config, Vec<ConfigProblem>> {
        match Config::parse_lenient(text) {
            (Some(c), problems) if problems.is_empty() => Ok(c),
            (_, problems) => Err(problems),
        }
    }

    /// Parses as much as possible: unknown keys are reported and left out,
    /// so that the rest can still be parsed (and validated).
    pub fn parse_lenient(text: &str) -> (Option<Config>, Vec<ConfigProblem>) {
        let mut value: toml::Value = match toml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let message = e.message().to_owned() + &location(text, e.span());
                return (None, vec![problem("<file>", message)]);
            }
        };
        let mut problems = unknown_keys(&value);
        let parsed = if problems.is_empty() {
            toml::from_str::<Config>(text).map_err(|e| problem(key_of(text, e.span()), e.message()))
        } else {
            remove_unknown(&mut value);
            let cleaned = toml::to_string(&value).unwrap_or_default();
            toml::from_str::<Config>(&cleaned)
                .map_err(|e| problem(key_of(&cleaned, e.span()), e.message()))
        };
        match parsed {
            Ok(c) => (Some(c), problems),
            Err(p) => {
                problems.push(p);
                (None, problems)
            }
        }
    }

    /// Every problem of a configuration text: syntax, unknown keys, types,
    /// then [`Config::validate`].
    pub fn check_text(text: &str) -> Vec<ConfigProblem> {
        let (config, mut problems) = Config::parse_lenient(text);
        if let Some(c) = config {
            problems.extend(c.validate());
        }
        problems
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigProblem>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![problem(
                "<file>",
                format!("cannot read {}: {e}", path.display()),
            )]
        })?;
        Config::from_toml_str(&text)
    }

    /// The virtual hosts, in order, without duplicates: `server.hosts` then
    /// the `[[host]]` names; `localhost` when neither is given.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        let listed = match &self.server.hosts {
            Some(h) => h.clone(),
            None if self.host.is_empty() => vec!["localhost".to_owned()],
            None => Vec::new(),
        };
        for h in listed
            .into_iter()
            .chain(self.host.iter().map(|h| h.name.clone()))
        {
            let h = h.to_lowercase();
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        hosts
    }

    /// The group-chat domain: `muc.domain`, else `conference.<first host>`.
    /// The bytestreams proxy's domain.
    pub fn proxy65_domain(&self) -> String {
        match &self.proxy65.domain {
            Some(d) => d.to_lowercase(),
            None => format!(
                "proxy.{}",
                self.hosts()
                    .first()
                    .map(String::as_str)
                    .unwrap_or("localhost")
            ),
        }
    }

    pub fn muc_domain(&self) -> String {
        match &self.muc.domain {
            Some(d) => d.to_lowercase(),
            None => format!(
                "conference.{}",
                self.hosts()
                    .first()
                    .map(String::as_str)
                    .unwrap_or("localhost")
            ),
        }
    }

    /// The storage location handed to `conclave_store::open`.
    pub fn storage_url(&self) -> String {
        match &self.storage.url {
            Some(u) => u.clone(),
            None => self
                .server
                .data_dir
                .join("conclave.sqlite")
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// The listeners (the default one when none is configured).
    pub fn listeners(&self) -> Vec<ListenerSection> {
        if self.listener.is_empty() {
            vec![ListenerSection::default()]
        } else {
            self.listener.clone()
        }
    }

    /// The group-chat creation policy (`LocalUsers` for an invalid value,
    /// which [`Config::validate`] reports).
    pub fn room_creation(&self) -> conclave_muc::CreationPolicy {
        parse_creation(&self.muc.room_creation).unwrap_or(conclave_muc::CreationPolicy::LocalUsers)
    }

    /// The administrators that parse as bare JIDs.
    pub fn admin_jids(&self) -> Vec<jid::BareJid> {
        self.server
            .admins
            .iter()
            .filter_map(|a| jid::BareJid::new(a).ok())
            .collect()
    }

    /// Every problem of this configuration; empty when it is usable.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let hosts = self.hosts();
        if hosts.is_empty() {
            out.push(problem("server.hosts", "no virtual host is configured"));
        }
        if let Some(list) = &self.server.hosts {
            for (i, h) in list.iter().enumerate() {
                if let Err(e) = jid::BareJid::new(h) {
                    out.push(problem(
                        format!("server.hosts[{i}]"),
                        format!("{h:?} is not a valid domain: {e}"),
                    ));
                } else if h.contains('@') || h.contains('/') {
                    out.push(problem(
                        format!("server.hosts[{i}]"),
                        format!("{h:?} is not a bare domain"),
                    ));
                }
            }
        }
        for (i, a) in self.server.admins.iter().enumerate() {
            match jid::BareJid::new(a) {
                Ok(j) if j.node().is_some() => {}
                Ok(_) => out.push(problem(
                    format!("server.admins[{i}]"),
                    format!("{a:?} has no user part"),
                )),
                Err(e) => out.push(problem(
                    format!("server.admins[{i}]"),
                    format!("{a:?} is not a valid JID: {e}"),
                )),
            }
        }
        for (i, h) in self.host.iter().enumerate() {
            let key = format!("host[{i}]");
            if h.name.is_empty() {
                out.push(problem(format!("{key}.name"), "missing host name"));
            } else if jid::BareJid::new(&h.name).is_err() || h.name.contains('@') {
                out.push(problem(
                    format!("{key}.name"),
                    format!("{:?} is not a valid domain", h.name),
                ));
            }
            match (&h.tls_cert, &h.tls_key) {
                (Some(_), None) => out.push(problem(
                    format!("{key}.tls_key"),
                    "tls_cert is set but tls_key is missing",
                )),
                (None, Some(_)) => out.push(problem(
                    format!("{key}.tls_cert"),
                    "tls_key is set but tls_cert is missing",
                )),
                _ => {}
            }
            for (field, path) in [("tls_cert", &h.tls_cert), ("tls_key", &h.tls_key)] {
                if let Some(p) = path {
                    if let Err(e) = std::fs::File::open(p) {
                        out.push(problem(
                            format!("{key}.{field}"),
                            format!("cannot read {}: {e}", p.display()),
                        ));
                    }
                }
            }
        }
        for (i, l) in self.listener.iter().enumerate() {
            if let Err(e) = l.addr.parse::<SocketAddr>() {
                out.push(problem(
                    format!("listener[{i}].addr"),
                    format!("{:?} is not an IP:port address: {e}", l.addr),
                ));
            }
        }
        let domain = self.muc_domain();
        if jid::BareJid::new(&domain).is_err() || domain.contains('@') {
            out.push(problem(
                "muc.domain",
                format!("{domain:?} is not a valid domain"),
            ));
        } else if hosts.contains(&domain) {
            out.push(problem(
                "muc.domain",
                format!("{domain:?} is also a virtual host"),
            ));
        }
        if self.proxy65.enabled {
            let proxy = self.proxy65_domain();
            if jid::BareJid::new(&proxy).is_err() || proxy.contains('@') {
                out.push(problem(
                    "proxy65.domain",
                    format!("{proxy:?} is not a valid domain"),
                ));
            } else if hosts.contains(&proxy) || proxy == domain {
                out.push(problem(
                    "proxy65.domain",
                    format!("{proxy:?} is also a virtual host or the group-chat domain"),
                ));
            }
            if let Err(e) = self.proxy65.addr.parse::<SocketAddr>() {
                out.push(problem(
                    "proxy65.addr",
                    format!("{:?} is not an IP:port address: {e}", self.proxy65.addr),
                ));
            }
            for (i, a) in self.proxy65.acl.iter().enumerate() {
                if let Err(e) = jid::Jid::new(a) {
                    out.push(problem(
                        format!("proxy65.acl[{i}]"),
                        format!("{a:?} is not a valid JID or domain: {e}"),
                    ));
                }
            }
        }
        if parse_creation(&self.muc.room_creation).is_none() {
            out.push(problem(
                "muc.room_creation",
                format!(
                    "unknown value {:?} (expected local-users, anyone or admins)",
                    self.muc.room_creation
                ),
            ));
        }
        if let Some(url) = &self.storage.url {
            if url.trim().is_empty() {
                out.push(problem("storage.url", "empty storage location"));
            } else if url.contains("://")
                && !(url.starts_with("postgres://")
                    || url.starts_with("postgresql://")
                    || url.starts_with("sqlite://"))
            {
                out.push(problem(
                    "storage.url",
                    format!("unsupported storage URL {url:?} (SQLite path or postgres:// URL)"),
                ));
            }
        }
        let l = &self.limits;
        for (key, value, min) in [
            ("limits.max_stanza_bytes", l.max_stanza_bytes, 1024),
            ("limits.max_depth", l.max_depth, 4),
            ("limits.max_connections_per_ip", l.max_connections_per_ip, 1),
            ("limits.session_queue", l.session_queue, 16),
            ("limits.room_queue", l.room_queue, 16),
        ] {
            if value < min {
                out.push(problem(
                    key,
                    format!("{value} is too small (at least {min})"),
                ));
            }
        }
        for (i, e) in self.external_service.iter().enumerate() {
            let key = format!("external_service[{i}]");
            if e.type_.trim().is_empty() {
                out.push(problem(format!("{key}.type"), "missing service type"));
            }
            if e.host.trim().is_empty() {
                out.push(problem(format!("{key}.host"), "missing host"));
            }
            if let Some(t) = &e.transport {
                if t != "udp" && t != "tcp" {
                    out.push(problem(
                        format!("{key}.transport"),
                        format!("unknown transport {t:?} (expected udp or tcp)"),
                    ));
                }
            }
            if e.username.is_some() != e.password.is_some() {
                out.push(problem(
                    format!("{key}.password"),
                    "username and password go together",
                ));
            }
        }
        for (field, values) in self.contact.fields() {
            for (i, v) in values.iter().enumerate() {
                if !v.contains(':') {
                    out.push(problem(
                        format!("contact.{}[{i}]", field.trim_end_matches("-addresses")),
                        format!("{v:?} is not a URI (e.g. mailto:abuse@example.org)"),
                    ));
                }
            }
        }
        out
    }
}

fn parse_creation(s: &str) -> Option<conclave_muc::CreationPolicy> {
    use conclave_muc::CreationPolicy::*;
    match s {
        "local-users" | "local" => Some(LocalUsers),
        "anyone" => Some(Anyone),
        "admins" => Some(Admins),
        _ => None,
    }
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> Option<usize> {
    let start = span?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    line_of(text, span)
        .map(|l| format!(" (line {l})"))
        .unwrap_or_default()
}

/// The key named at a span of a typed-deserialisation error: the text of
/// that line up to `=`, prefixed with the table header above it.
fn key_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(line) = line_of(text, span) else {
        return "<file>".to_owned();
    };
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line - 1).copied().unwrap_or("");
    let key = here.split('=').next().unwrap_or("").trim();
    let table = lines
        .iter()
        .take(line)
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    match table {
        Some(t) if !key.is_empty() && !key.starts_with('[') => format!("{t}.{key}"),
        Some(t) => t,
        None if !key.is_empty() => key.to_owned(),
        None => format!("<file> line {line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.hosts(), vec!["localhost"]);
        assert_eq!(c.muc_domain(), "conference.localhost");
        assert_eq!(c.listeners()[0].addr, "127.0.0.1:5222");
        assert!(c.server.require_encryption);
        assert!(!c.server.allow_plaintext_auth);
        assert_eq!(c.limits.max_stanza_bytes, 262_144);
        assert_eq!(
            PathBuf::from(c.storage_url()),
            PathBuf::from("./data/conclave.sqlite")
        );
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn hosts_from_both_forms_and_muc_default() {
        let c = Config::from_toml_str(
            "[server]\nhosts = [\"a.example\"]\n[[host]]\nname = \"b.example\"\n[[host]]\nname = \"a.example\"\n",
        )
        .unwrap();
        assert_eq!(c.hosts(), vec!["a.example", "b.example"]);
        assert_eq!(c.muc_domain(), "conference.a.example");
    }

    #[test]
    fn unknown_keys_all_reported_with_path() {
        let err =
            Config::from_toml_str("bogus = 1\n[server]\nhostz = []\n[[listener]]\nadr = \"x\"\n")
                .unwrap_err();
        let keys: Vec<_> = err.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"bogus"), "{keys:?}");
        assert!(keys.contains(&"server.hostz"), "{keys:?}");
        assert!(keys.contains(&"listener[0].adr"), "{keys:?}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = Config::from_toml_str("[limits]\nmax_depth = \"deep\"\n").unwrap_err();
        assert_eq!(err[0].key, "limits.max_depth");
    }

    #[test]
    fn validate_lists_every_problem() {
        let c = Config::from_toml_str(
            "[server]\nhosts = []\nadmins = [\"nobody\"]\n[[host]]\nname = \"h.example\"\ntls_cert = \"/nonexistent/c.pem\"\n\
             [[listener]]\naddr = \"not an address\"\n[muc]\ndomain = \"h.example\"\nroom_creation = \"everyone\"\n",
        )
        .unwrap();
        let problems = c.validate();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "server.admins[0]",
            "host[0].tls_key",
            "host[0].tls_cert",
            "listener[0].addr",
            "muc.domain",
            "muc.room_creation",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
    }

    #[test]
    fn check_text_reports_unknown_keys_and_validation_problems_together() {
        let problems =
            Config::check_text("[server]\nhosts = []\nbogus = 1\n[muc]\nroom_creation = \"x\"\n");
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"server.bogus"), "{keys:?}");
        assert!(keys.contains(&"server.hosts"), "{keys:?}");
        assert!(keys.contains(&"muc.room_creation"), "{keys:?}");
    }

    #[test]
    fn example_file_is_valid() {
        let text = include_str!("../../../conclave.example.toml");
        let c = Config::from_toml_str(text).expect("example parses");
        assert!(!c.im.version_show_os);
        assert_eq!(c.im.max_blocklist_items, 1000);
        assert!(c.external_service.is_empty());
    }

    #[test]
    fn im_sections_parse_and_validate() {
        let c = Config::from_toml_str(
            "[im]\nversion_show_os = true\n[contact]\nabuse = [\"mailto:abuse@a.example\"]\n\
             [[external_service]]\ntype = \"stun\"\nhost = \"stun.a.example\"\nport = 3478\ntransport = \"udp\"\n",
        )
        .unwrap();
        assert!(c.im.version_show_os);
        assert_eq!(c.im.max_vcard_bytes, 65_536);
        assert_eq!(c.contact.fields().len(), 1);
        assert_eq!(c.contact.fields()[0].0, "abuse-addresses");
        assert_eq!(c.external_service[0].port, Some(3478));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let bad = Config::from_toml_str(
            "[contact]\nadmin = [\"nobody\"]\n[[external_service]]\ntype = \"turn\"\nhost = \"\"\ntransport = \"sctp\"\nusername = \"u\"\n",
        )
        .unwrap();
        let keys: Vec<String> = bad.validate().into_iter().map(|p| p.key).collect();
        for k in [
            "contact.admin[0]",
            "external_service[0].host",
            "external_service[0].transport",
            "external_service[0].password",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing in {keys:?}");
        }
        let unknown = Config::check_text("[im]\nshow_everything = true\n");
        assert!(unknown.iter().any(|p| p.key == "im.show_everything"));
    }

    #[test]
    fn empty_hosts_is_a_problem() {
        let c = Config::from_toml_str("[server]\nhosts = []\n").unwrap();
        assert!(c.validate().iter().any(|p| p.key == "server.hosts"));
    }

    #[test]
    fn syntax_error_is_reported() {
        let err = Config::from_toml_str("[server\n").unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err[0].message.contains("line 1"), "{}", err[0].message);
    }
}
