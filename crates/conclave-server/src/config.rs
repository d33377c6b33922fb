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

/// The whole configuration file. Serde ignores unknown keys here:
/// [`Config::parse_lenient`] reports each of them with its path.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
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
#[serde(default)]
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
#[serde(default)]
pub struct HostSection {
    pub name: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
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
#[serde(default)]
pub struct StorageSection {
    /// SQLite path (or `sqlite:` URL) or `postgres://` URL. Absent:
    /// `<data_dir>/conclave.sqlite`.
    pub url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct MucSection {
    /// Group-chat domain. Absent: `conference.<first host>`.
    pub domain: Option<String>,
    /// `local-users` (default), `anyone` or `admins`.
    pub room_creation: String,
    pub max_history: usize,
    /// Bytes of history one room keeps at most.
    pub max_history_bytes: usize,
    /// 0: no limit.
    pub max_occupants: usize,
}

impl Default for MucSection {
    fn default() -> Self {
        MucSection {
            domain: None,
            room_creation: "local-users".to_owned(),
            max_history: 20,
            max_history_bytes: 262_144,
            max_occupants: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LimitsSection {
    pub max_stanza_bytes: usize,
    pub max_depth: usize,
    /// Attributes (namespace declarations included) on one element, the
    /// stream header included.
    pub max_attributes: usize,
    pub max_connections_per_ip: usize,
    /// Bytes per second read from one connection (reading pauses beyond;
    /// bursts of four seconds' worth); 0: no limit.
    pub max_bytes_per_second: u64,
    /// Sessions (bound resources) one account may have at once.
    pub max_sessions_per_account: usize,
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
            max_attributes: 100,
            max_connections_per_ip: 32,
            max_bytes_per_second: 262_144,
            max_sessions_per_account: 10,
            max_offline_messages: 1000,
            session_queue: 2048,
            room_queue: 4096,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
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
#[serde(default)]
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
#[serde(default)]
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

impl Config {
    /// Parses a configuration. Syntax errors, values of the wrong type and
    /// unknown keys are returned as problems, each with its path.
    pub fn from_toml_str(text: &str) -> Result<Config, Vec<ConfigProblem>> {
        match Config::parse_lenient(text) {
            (Some(c), problems) if problems.is_empty() => Ok(c),
            (_, problems) => Err(problems),
        }
    }

    /// Parses as much as possible: every unknown key and every value of the
    /// wrong type is reported with its path, and the rest is still parsed
    /// (wrong values left out, so that their defaults apply).
    pub fn parse_lenient(text: &str) -> (Option<Config>, Vec<ConfigProblem>) {
        let (config, problems, _) = parse(text);
        (config, problems)
    }

    /// Every problem of a configuration text: syntax, unknown keys, types,
    /// then [`Config::validate`].
    pub fn check_text(text: &str) -> Vec<ConfigProblem> {
        let (config, mut problems, removed) = parse(text);
        let Some(config) = config else {
            return problems;
        };
        // Validated without the values of a wrong type: their defaults are
        // not problems of their own, and keys get the indices of the file.
        let reported: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
        let within = |key: &str, outer: &str| {
            key.strip_prefix(outer)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        for p in config.validate() {
            let key = removed.key_in_file(&p.key);
            if !reported.iter().any(|r| within(&key, r)) {
                problems.push(ConfigProblem {
                    key,
                    message: p.message,
                });
            }
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
            ("limits.max_attributes", l.max_attributes, 16),
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

/// One step of a key's path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A path as problems name it: `server.hosts[0]`, `listener[1].addr`.
fn key_name(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push_str("<file>");
    }
    out
}

/// The path of a key named by [`key_name`].
fn key_path(key: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let mut pieces = part.split('[');
        if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
            out.push(Segment::Key(name.to_owned()));
        }
        for piece in pieces {
            match piece.strip_suffix(']').and_then(|i| i.parse().ok()) {
                Some(i) => out.push(Segment::Index(i)),
                None => out.push(Segment::Key(format!("[{piece}"))),
            }
        }
    }
    out
}

/// The path of a key that serde_ignored reports.
fn ignored_path(path: &serde_ignored::Path) -> Vec<Segment> {
    use serde_ignored::Path;
    let mut out = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    };
    match path {
        Path::Seq { index, .. } => out.push(Segment::Index(*index)),
        Path::Map { key, .. } => out.push(Segment::Key(key.clone())),
        _ => {}
    }
    out
}

/// The path of a value that failed to deserialise; `None` when it goes
/// through something that is neither a key nor an index.
fn error_path(path: &serde_path_to_error::Path) -> Option<Vec<Segment>> {
    use serde_path_to_error::Segment as S;
    path.iter()
        .map(|segment| match segment {
            S::Seq { index } => Some(Segment::Index(*index)),
            S::Map { key } => Some(Segment::Key(key.clone())),
            _ => None,
        })
        .collect()
}

/// Array elements taken out of the document, by their place in the file,
/// so that what is found afterwards is named with the file's indices.
#[derive(Default)]
struct Removed(Vec<(Vec<Segment>, usize)>);

impl Removed {
    /// The path in the file of a path in the document as it is now.
    fn in_file(&self, path: &[Segment]) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::with_capacity(path.len());
        for segment in path {
            match segment {
                Segment::Index(i) => {
                    let mut gone: Vec<usize> = self
                        .0
                        .iter()
                        .filter(|(array, _)| *array == out)
                        .map(|(_, index)| *index)
                        .collect();
                    gone.sort_unstable();
                    let mut index = *i;
                    for g in gone {
                        if g <= index {
                            index += 1;
                        }
                    }
                    out.push(Segment::Index(index));
                }
                key => out.push(key.clone()),
            }
        }
        out
    }

    /// [`Removed::in_file`] for a key named by [`key_name`].
    fn key_in_file(&self, key: &str) -> String {
        if self.0.is_empty() {
            return key.to_owned();
        }
        key_name(&self.in_file(&key_path(key)))
    }
}

/// Takes the value at `path` out of the document; `false` when there is
/// none.
fn remove(doc: &mut toml::Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut value = doc;
    for segment in parents {
        let next = match (segment, value) {
            (Segment::Key(k), toml::Value::Table(t)) => t.get_mut(k),
            (Segment::Index(i), toml::Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        value = next;
    }
    match (last, value) {
        (Segment::Key(k), toml::Value::Table(t)) => t.remove(k).is_some(),
        (Segment::Index(i), toml::Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// One pass of deserialisation: the configuration, or the first value of a
/// wrong type; and the unknown keys met on the way.
type Pass = (
    Result<Config, serde_path_to_error::Error<toml::de::Error>>,
    Vec<Vec<Segment>>,
);

fn deserialize(doc: toml::Value) -> Pass {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path| unknown.push(ignored_path(&path));
    let result = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(doc, &mut note));
    (result, unknown)
}

/// Parses a configuration text, reporting every problem. A syntax error
/// stops there; otherwise each value of a wrong type is reported and taken
/// out, and the rest deserialised again until it goes through; then the
/// unknown keys. Also returns the array elements taken out.
fn parse(text: &str) -> (Option<Config>, Vec<ConfigProblem>, Removed) {
    let mut doc: toml::Value = match toml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let message = e.message().to_owned() + &location(text, e.span());
            return (None, vec![problem("<file>", message)], Removed::default());
        }
    };
    let mut removed = Removed::default();
    let mut found: Vec<(Vec<Segment>, ConfigProblem)> = Vec::new();
    // Each pass but the last takes a value out of the document: this ends.
    let (config, unknown) = loop {
        let (result, unknown) = deserialize(doc.clone());
        let error = match result {
            Ok(config) => break (Some(config), unknown),
            Err(e) => e,
        };
        let path = error_path(error.path()).unwrap_or_default();
        let in_file = removed.in_file(&path);
        let message = error.inner().message().to_owned();
        found.push((in_file.clone(), problem(key_name(&in_file), message)));
        if !remove(&mut doc, &path) {
            break (None, unknown);
        }
        if let Some((Segment::Index(i), array)) = in_file.split_last() {
            removed.0.push((array.to_vec(), *i));
        }
    };
    for path in unknown {
        let in_file = removed.in_file(&path);
        let key = key_name(&in_file);
        found.push((in_file, problem(key, "unknown key")));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let problems = found.into_iter().map(|(_, p)| p).collect();
    (config, problems, removed)
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
    fn every_wrong_value_is_reported() {
        let text = "[limits]\nmax_depth = -5\nsession_queue = \"big\"\nmax_history = 3\n\
                    [[listener]]\naddr = 5\n[[listener]]\naddr = \"127.0.0.1:1\"\ndirect_tls = \"yes\"\n\
                    [[external_service]]\ntype = \"stun\"\nhost = \"h\"\nport = 70000\n";
        let problems = Config::from_toml_str(text).unwrap_err();
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.key.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "external_service[0].port",
                    "invalid value: integer `70000`, expected u16"
                ),
                (
                    "limits.max_depth",
                    "invalid value: integer `-5`, expected usize"
                ),
                ("limits.max_history", "unknown key"),
                (
                    "limits.session_queue",
                    "invalid type: string \"big\", expected usize"
                ),
                (
                    "listener[0].addr",
                    "invalid type: integer `5`, expected a string"
                ),
                (
                    "listener[1].direct_tls",
                    "invalid type: string \"yes\", expected a boolean"
                ),
            ]
        );
        // The rest is parsed, with defaults in place of the wrong values.
        let (config, _) = Config::parse_lenient(text);
        let config = config.expect("parsed without the wrong values");
        assert_eq!(config.limits.max_depth, 64);
        assert_eq!(config.listener[1].addr, "127.0.0.1:1");
        assert!(!config.listener[1].direct_tls);
    }

    #[test]
    fn wrong_array_elements_keep_their_file_indices() {
        let problems = Config::check_text(
            "[server]\nhosts = [1, \"a.example\", 2, \"b@c\"]\n\
             [[host]]\nname = 7\n[[host]]\nname = \"\"\nbogus = 1\n\
             [[listener]]\naddr = \"nowhere\"\n",
        );
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "host[0].name",
                "host[1].bogus",
                "server.hosts[0]",
                "server.hosts[2]",
                // Validation of what is left, with the file's indices.
                "server.hosts[3]",
                "host[1].name",
                "listener[0].addr",
            ]
        );
        let listener = Config::check_text("listener = [5, { addr = \"x\" }]\n");
        let keys: Vec<&str> = listener.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["listener[0]", "listener[1].addr"]);
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
