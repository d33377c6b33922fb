//! Running a parsed script against a server.
//!
//! Each client reads its stanzas in arrival order. A `receives` step takes
//! stanzas from the front of the client's queue, waiting up to the timeout,
//! until one matches; stanzas that do not match before it are passed over
//! (and shown if the step fails). `receives: nothing` fails if any stanza
//! arrives within a short quiet period.
//!
//! Variables are replaced when a stanza is needed: a `sends:` block's
//! stanzas just before they are sent, each stanza of a `receives:` block
//! just before it is awaited, so it may use what the stanzas before it in
//! the same block captured. The values a matched stanza captures are stored
//! once it has matched; a later capture of the same name replaces one.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use jid::FullJid;
use minidom::Element;
use tokio::time::Instant;

use crate::client::{Client, ClientError, ClientOptions, TlsMode};
use crate::matcher::{match_capturing, Captured, Mismatch};
use crate::script::{strip_whitespace, Action, Captures, Script, Step, Var, VarKind};

/// How to run scripts.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// How long a `receives` step (and a login) waits.
    pub timeout: Duration,
    /// Only `scansion:strict='true'` makes an element strict.
    pub loose: bool,
    /// Print every step and stanza to standard error.
    pub verbose: bool,
    /// How long `receives: nothing` listens.
    pub quiet_period: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            host: "127.0.0.1".into(),
            port: 5222,
            timeout: Duration::from_secs(5),
            loose: false,
            verbose: false,
            quiet_period: Duration::from_millis(500),
        }
    }
}

/// The result of one script.
#[derive(Debug, Clone)]
pub struct ScriptOutcome {
    /// The script's title.
    pub title: String,
    /// Whether every step succeeded.
    pub passed: bool,
    /// The first failing step, if any.
    pub failure: Option<Failure>,
}

/// A failed step, with what is needed to fix the server.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Line of the failing action in the script.
    pub line: usize,
    /// The action as written (`Romeo receives:`).
    pub step: String,
    /// One line: why it failed.
    pub reason: String,
    /// The expected stanza, if the step expected one.
    pub expected: Option<String>,
    /// Stanzas received and passed over during the step, with why each did
    /// not match.
    pub passed_over: Vec<(String, String)>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  line {}: {}", self.line, self.step)?;
        write!(f, "  why: {}", self.reason)?;
        if let Some(expected) = &self.expected {
            write!(f, "\n  expected:")?;
            for l in expected.lines() {
                write!(f, "\n    {l}")?;
            }
        }
        if self.passed_over.is_empty() {
            if self.expected.is_some() {
                write!(f, "\n  received and passed over: nothing")?;
            }
        } else {
            write!(
                f,
                "\n  received and passed over ({}):",
                self.passed_over.len()
            )?;
            for (stanza, why) in &self.passed_over {
                write!(f, "\n    {stanza}\n      ({why})")?;
            }
        }
        Ok(())
    }
}

struct ClientState {
    client: Option<Client>,
    bound: Option<FullJid>,
    disconnected: bool,
}

/// Runs a script; every client it connected is disconnected at the end.
pub async fn run_script(script: &Script, opts: &RunOptions) -> ScriptOutcome {
    let mut states: HashMap<String, ClientState> = script
        .clients
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                ClientState {
                    client: None,
                    bound: None,
                    disconnected: false,
                },
            )
        })
        .collect();
    let mut captures = Captures::new();
    let mut failure = None;
    for step in &script.steps {
        if opts.verbose {
            eprintln!("[line {}] {}", step.line, step.describe());
        }
        if let Err(f) = run_step(script, step, &mut states, &mut captures, opts).await {
            failure = Some(f);
            break;
        }
    }
    let mut closing = Vec::new();
    for state in states.into_values() {
        if let Some(client) = state.client {
            closing.push(tokio::spawn(async move {
                let _ = client.close().await;
            }));
        }
    }
    for handle in closing {
        let _ = handle.await;
    }
    ScriptOutcome {
        title: script.title.clone(),
        passed: failure.is_none(),
        failure,
    }
}

fn fail(step: &Step, reason: impl Into<String>) -> Failure {
    Failure {
        line: step.line,
        step: step.describe(),
        reason: reason.into(),
        expected: None,
        passed_over: Vec::new(),
    }
}

/// The value of a variable now: a client's JID, or what was captured.
fn value_of(
    script: &Script,
    states: &HashMap<String, ClientState>,
    captures: &Captures,
    var: &Var,
) -> Option<String> {
    match var {
        Var::Client {
            name,
            kind: VarKind::BareJid,
        } => script.client(name).map(|c| c.bare_jid().to_string()),
        Var::Client {
            name,
            kind: VarKind::FullJid,
        } => states
            .get(name)
            .and_then(|s| s.bound.as_ref())
            .map(|j| j.to_string()),
        Var::Captured(name) => captures.get(name).map(str::to_owned),
    }
}

async fn run_step(
    script: &Script,
    step: &Step,
    states: &mut HashMap<String, ClientState>,
    captures: &mut Captures,
    opts: &RunOptions,
) -> Result<(), Failure> {
    let name = step.client.as_str();
    match &step.action {
        Action::Connect => {
            let decl = script
                .client(name)
                .ok_or_else(|| fail(step, format!("no client '{name}' is declared")))?;
            let state = states
                .get_mut(name)
                .ok_or_else(|| fail(step, format!("no client '{name}' is declared")))?;
            if state.client.is_some() {
                return Err(fail(step, format!("{name} is already connected")));
            }
            let mut copts =
                ClientOptions::new(&opts.host, opts.port, decl.jid.clone(), &decl.password);
            copts.tls = TlsMode::Auto;
            copts.timeout = opts.timeout.max(Duration::from_secs(5));
            let client = Client::connect(copts)
                .await
                .map_err(|e| fail(step, format!("{name} ({}) cannot connect: {e}", decl.jid)))?;
            if opts.verbose {
                eprintln!("  {name} is bound as {}", client.bound_jid());
            }
            state.bound = Some(client.bound_jid().clone());
            state.client = Some(client);
            state.disconnected = false;
            Ok(())
        }
        Action::Disconnect => {
            let state = states
                .get_mut(name)
                .ok_or_else(|| fail(step, format!("no client '{name}' is declared")))?;
            let client = state
                .client
                .take()
                .ok_or_else(|| fail(step, format!("{name} is not connected")))?;
            state.disconnected = true;
            client
                .close()
                .await
                .map_err(|e| fail(step, format!("{name} could not close its stream: {e}")))
        }
        Action::Send(block) => {
            let elements = block
                .stanzas
                .iter()
                .map(|s| s.resolve(|v| value_of(script, states, captures, v)))
                .collect::<Result<Vec<Element>, String>>()
                .map_err(|e| fail(step, e))?;
            let state = states
                .get_mut(name)
                .ok_or_else(|| fail(step, format!("no client '{name}' is declared")))?;
            let Some(client) = state.client.as_mut() else {
                if state.disconnected {
                    // Sending after disconnecting is a no-op.
                    return Ok(());
                }
                return Err(fail(step, format!("{name} sends before connecting")));
            };
            for el in &elements {
                if opts.verbose {
                    eprintln!("  {name} >> {}", String::from(el));
                }
                client
                    .send(el)
                    .await
                    .map_err(|e| fail(step, format!("{name} could not send: {e}")))?;
            }
            Ok(())
        }
        Action::Receive(block) => {
            match states.get(name) {
                None => return Err(fail(step, format!("no client '{name}' is declared"))),
                Some(state) if state.client.is_none() => {
                    return Err(fail(step, format!("{name} is not connected")))
                }
                Some(_) => {}
            }
            let count = block.stanzas.len();
            for (index, stanza) in block.stanzas.iter().enumerate() {
                let resolved = stanza.resolve(|v| value_of(script, states, captures, v));
                let outcome = match (
                    resolved,
                    states.get_mut(name).and_then(|s| s.client.as_mut()),
                ) {
                    (Err(e), _) => Err(fail(step, e)),
                    (Ok(_), None) => Err(fail(step, format!("{name} is not connected"))),
                    (Ok(expected), Some(client)) => {
                        receive_one(client, &expected, step, opts).await
                    }
                };
                match outcome {
                    Ok(captured) => captures.store(captured),
                    Err(mut f) => {
                        // The block as expected, with the values known now.
                        f.expected = Some(block.display(|v| value_of(script, states, captures, v)));
                        if count > 1 {
                            f.reason = format!("stanza {} of {count}: {}", index + 1, f.reason);
                        }
                        return Err(f);
                    }
                }
            }
            Ok(())
        }
        Action::ReceiveNothing => {
            let state = states
                .get_mut(name)
                .ok_or_else(|| fail(step, format!("no client '{name}' is declared")))?;
            let Some(client) = state.client.as_mut() else {
                return Err(fail(step, format!("{name} is not connected")));
            };
            match client.recv_timeout(opts.quiet_period).await {
                Err(ClientError::Timeout(_)) => Ok(()),
                Ok(Some(el)) => {
                    let shown = compact(&el);
                    let mut f = fail(step, format!("expected nothing, received <{}>", el.name()));
                    f.passed_over.push((shown, "nothing was expected".into()));
                    Err(f)
                }
                Ok(None) => Err(fail(
                    step,
                    format!("{name}'s stream was closed by the server"),
                )),
                Err(e) => Err(fail(step, format!("{name}: {e}"))),
            }
        }
    }
}

/// A received stanza on one line, for reports.
fn compact(el: &Element) -> String {
    String::from(&strip_whitespace(el))
}

/// Takes stanzas until one matches `expected`, or the timeout passes;
/// returns what the matching stanza captured.
async fn receive_one(
    client: &mut Client,
    expected: &Element,
    step: &Step,
    opts: &RunOptions,
) -> Result<Captured, Failure> {
    let deadline = Instant::now() + opts.timeout;
    let mut passed_over: Vec<(String, String)> = Vec::new();
    let mut closest: Option<Mismatch> = None;
    loop {
        let now = Instant::now();
        let outcome = if now >= deadline {
            Err(ClientError::Timeout(String::new()))
        } else {
            client.recv_timeout(deadline - now).await
        };
        let end_reason = match outcome {
            Ok(Some(received)) => {
                if opts.verbose {
                    eprintln!("  {} << {}", step.client, compact(&received));
                }
                match match_capturing(expected, &received, opts.loose) {
                    Ok(captured) => {
                        if opts.verbose {
                            for (var, value) in &captured {
                                eprintln!("  captured {var} = {value}");
                            }
                        }
                        return Ok(captured);
                    }
                    Err(m) => {
                        passed_over.push((compact(&received), m.to_string()));
                        if closest.as_ref().is_none_or(|c| m.closeness > c.closeness) {
                            closest = Some(m);
                        }
                        continue;
                    }
                }
            }
            Err(ClientError::Timeout(_)) => format!("no matching stanza within {:?}", opts.timeout),
            Ok(None) => "the server closed the stream".to_owned(),
            Err(e) => e.to_string(),
        };
        let reason = match &closest {
            Some(m) => format!("{end_reason}; closest: {m}"),
            None => format!("{end_reason}; nothing was received"),
        };
        let mut f = fail(step, reason);
        f.passed_over = passed_over;
        return Err(f);
    }
}
