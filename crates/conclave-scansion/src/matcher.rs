//! Matching a received stanza against the one a script expects.
//!
//! - Non-strict (the default for an element in its parent's namespace):
//!   expected attributes must be present with their values (extra ones are
//!   fine); every expected child must match a distinct received child, in
//!   any order (extra children are fine); expected text must equal the
//!   received text, both trimmed.
//! - Strict: attributes equal both ways, the same children in the same
//!   order, each matched strictly, and equal text.
//! - An element whose namespace differs from its parent's is strict, with
//!   its whole subtree; `scansion:strict='true'|'false'` overrides this.
//!   With `loose`, only `scansion:strict='true'` makes anything strict.
//! - The attribute value `{scansion:any}` matches any value, but the
//!   attribute must be present.
//!
//! A mismatch is explained in one line: the path to the element, then what
//! differs (which attribute, which child).

use std::fmt;

use minidom::Element;

use crate::script::{NS_CLIENT, NS_SCANSION};

/// The attribute value that matches any value.
pub const ANY: &str = "{scansion:any}";

/// Why a received stanza does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Path from the stanza to the element that differs,
    /// e.g. `<presence>/<x xmlns='http://jabber.org/protocol/muc#user'>`.
    pub path: String,
    /// What differs.
    pub reason: String,
    /// How deep the difference is (0: the stanza itself), and how many of
    /// the stanza's expected attributes matched: the larger, the closer the
    /// received stanza was to the expected one.
    pub closeness: (usize, usize),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Matches `received` against `expected` (both top-level stanzas).
pub fn match_stanza(expected: &Element, received: &Element, loose: bool) -> Result<(), Mismatch> {
    let top_attrs = matching_attr_count(expected, received);
    let ctx = Ctx { loose };
    ctx.element(expected, received, NS_CLIENT, false, None, &mut Vec::new())
        .map_err(|(depth, path, reason)| Mismatch {
            path,
            reason,
            closeness: (depth, top_attrs),
        })
}

struct Ctx {
    loose: bool,
}

type Failure = (usize, String, String);

/// How an element appears in a path: its name, and its namespace when it
/// brings its own.
fn label(el: &Element, parent_ns: &str) -> String {
    if el.ns() == parent_ns {
        format!("<{}>", el.name())
    } else {
        format!("<{} xmlns='{}'>", el.name(), el.ns())
    }
}

fn path_of(segments: &[String]) -> String {
    segments.join("/")
}

fn is_directive(ns: &rxml::Namespace) -> bool {
    ns.as_str() == NS_SCANSION
}

fn attr_name(ns: &rxml::Namespace, name: &str) -> String {
    if ns.is_none() {
        name.to_owned()
    } else {
        format!("{{{}}}{name}", ns.as_str())
    }
}

fn matching_attr_count(expected: &Element, received: &Element) -> usize {
    expected
        .attrs()
        .iter()
        .filter(|((ns, name), value)| {
            !is_directive(ns)
                && received
                    .attrs()
                    .get(*ns, name.as_str())
                    .is_some_and(|got| got == value.as_str() || value.as_str() == ANY)
        })
        .count()
}

impl Ctx {
    /// Whether `expected` is matched strictly, given its parent's namespace
    /// and whether an ancestor made the subtree strict.
    fn strictness(&self, expected: &Element, parent_ns: &str, inherited: bool) -> bool {
        let directive = expected
            .attrs()
            .get(&rxml::Namespace::from(NS_SCANSION.to_owned()), "strict")
            .map(String::as_str);
        match directive {
            Some("true") => true,
            Some(_) => false,
            None if self.loose => inherited,
            None => inherited || expected.ns() != parent_ns,
        }
    }

    fn element(
        &self,
        expected: &Element,
        received: &Element,
        parent_ns: &str,
        inherited: bool,
        position: Option<usize>,
        path: &mut Vec<String>,
    ) -> Result<(), Failure> {
        let here = |path: &Vec<String>| path.len();
        if expected.name() != received.name() || expected.ns() != received.ns() {
            let mut p = path.clone();
            p.push(label(received, parent_ns));
            return Err((
                here(path),
                path_of(&p),
                format!(
                    "expected {}, got {}",
                    label(expected, parent_ns),
                    label(received, parent_ns)
                ),
            ));
        }
        path.push(match position {
            Some(n) => format!("{}[{n}]", label(expected, parent_ns)),
            None => label(expected, parent_ns),
        });
        let strict = self.strictness(expected, parent_ns, inherited);
        let depth = path.len() - 1;
        let fail = |path: &Vec<String>, reason: String| Err((depth, path_of(path), reason));

        // Attributes.
        for ((ns, name), value) in expected.attrs().iter() {
            if is_directive(ns) {
                continue;
            }
            let shown = attr_name(ns, name.as_str());
            match received.attrs().get(ns, name.as_str()) {
                None => {
                    let want = if value == ANY {
                        "any value".to_owned()
                    } else {
                        format!("'{value}'")
                    };
                    return fail(
                        path,
                        format!("attribute '{shown}': expected {want}, missing"),
                    );
                }
                Some(got) if value != ANY && got != value.as_str() => {
                    return fail(
                        path,
                        format!("attribute '{shown}': expected '{value}', got '{got}'"),
                    );
                }
                Some(_) => {}
            }
        }
        if strict {
            for ((ns, name), value) in received.attrs().iter() {
                if expected.attrs().get(ns, name.as_str()).is_none() {
                    let shown = attr_name(ns, name.as_str());
                    return fail(
                        path,
                        format!("strict: unexpected attribute '{shown}'='{value}'"),
                    );
                }
            }
        }

        // Text.
        let want = expected.text();
        let got = received.text();
        let (want, got) = (want.trim(), got.trim());
        if (strict || !want.is_empty()) && want != got {
            let reason = if strict && want.is_empty() {
                format!("strict: expected no text, got '{got}'")
            } else {
                format!("text: expected '{want}', got '{got}'")
            };
            return fail(path, reason);
        }

        // Children.
        let ns = expected.ns();
        let want: Vec<&Element> = expected.children().collect();
        let got: Vec<&Element> = received.children().collect();
        if strict {
            for (i, w) in want.iter().enumerate() {
                let Some(g) = got.get(i) else {
                    return fail(
                        path,
                        format!(
                            "strict: expected {} children, got {}: child {} ({}) is missing",
                            want.len(),
                            got.len(),
                            i + 1,
                            label(w, &ns)
                        ),
                    );
                };
                if w.name() != g.name() || w.ns() != g.ns() {
                    return fail(
                        path,
                        format!(
                            "strict: child {} is {}, expected {}",
                            i + 1,
                            label(g, &ns),
                            label(w, &ns)
                        ),
                    );
                }
                self.element(w, g, &ns, true, Some(i + 1), path)?;
            }
            if got.len() > want.len() {
                let extra: Vec<String> = got[want.len()..].iter().map(|g| label(g, &ns)).collect();
                return fail(
                    path,
                    format!(
                        "strict: expected {} children, got {}: unexpected {}",
                        want.len(),
                        got.len(),
                        extra.join(", ")
                    ),
                );
            }
        } else {
            self.unordered_children(&want, &got, &ns, inherited, path)?;
        }
        path.pop();
        Ok(())
    }

    /// Every expected child matches a distinct received child, in any order.
    fn unordered_children(
        &self,
        want: &[&Element],
        got: &[&Element],
        ns: &str,
        inherited: bool,
        path: &[String],
    ) -> Result<(), Failure> {
        // compat[i]: received children that expected child i matches.
        let mut compat: Vec<Vec<usize>> = Vec::with_capacity(want.len());
        for w in want {
            let mut ok = Vec::new();
            let mut closest: Option<Failure> = None;
            for (j, g) in got.iter().enumerate() {
                match self.element(w, g, ns, inherited, None, &mut path.to_vec()) {
                    Ok(()) => ok.push(j),
                    Err(f) => {
                        let same_kind = w.name() == g.name() && w.ns() == g.ns();
                        if same_kind && closest.as_ref().is_none_or(|c| f.0 > c.0) {
                            closest = Some(f);
                        }
                    }
                }
            }
            if ok.is_empty() {
                let depth = path.len() - 1;
                return Err(match closest {
                    Some(f) => f,
                    None => (
                        depth,
                        path_of(path),
                        format!("missing child {}", describe(w, ns)),
                    ),
                });
            }
            compat.push(ok);
        }
        let mut used = vec![false; got.len()];
        if assign(&compat, 0, &mut used) {
            Ok(())
        } else {
            Err((
                path.len() - 1,
                path_of(path),
                "expected children match only the same received children (duplicates expected, too few received)".into(),
            ))
        }
    }
}

/// Finds distinct received children for all expected children.
fn assign(compat: &[Vec<usize>], i: usize, used: &mut [bool]) -> bool {
    let Some(options) = compat.get(i) else {
        return true;
    };
    for &j in options {
        if !used[j] {
            used[j] = true;
            if assign(compat, i + 1, used) {
                return true;
            }
            used[j] = false;
        }
    }
    false
}

/// A short rendering of an expected element: its label with attributes.
fn describe(el: &Element, parent_ns: &str) -> String {
    let mut s = format!("<{}", el.name());
    if el.ns() != parent_ns {
        s.push_str(&format!(" xmlns='{}'", el.ns()));
    }
    for ((ns, name), value) in el.attrs().iter() {
        if is_directive(ns) {
            continue;
        }
        s.push_str(&format!(" {}='{value}'", attr_name(ns, name.as_str())));
    }
    s.push_str(if el.children().next().is_some() {
        ">…"
    } else {
        "/>"
    });
    s
}
