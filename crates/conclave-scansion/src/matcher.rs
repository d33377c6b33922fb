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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_stanzas;

    fn el(xml: &str) -> Element {
        parse_stanzas(xml).unwrap().remove(0)
    }

    /// Matches with the server's stanza written compactly, as servers send.
    fn check(expected: &str, received: &str) -> Result<(), String> {
        match_stanza(&el(expected), &el(received), false).map_err(|m| m.to_string())
    }

    fn check_loose(expected: &str, received: &str) -> Result<(), String> {
        match_stanza(&el(expected), &el(received), true).map_err(|m| m.to_string())
    }

    const MUC_USER: &str = "http://jabber.org/protocol/muc#user";

    #[test]
    fn non_strict_allows_extra_attributes_and_children_in_any_order() {
        check(
            "<presence from='r@c/R'>\n\t<status/>\n\t<show>away</show>\n</presence>",
            "<presence from='r@c/R' to='u@l/x' id='1'><show>away</show><priority>1</priority><status/></presence>",
        )
        .unwrap();
    }

    #[test]
    fn attribute_value_and_presence_are_named() {
        assert_eq!(
            check("<iq type='result' id='a'/>", "<iq type='error' id='a'/>").unwrap_err(),
            "<iq>: attribute 'type': expected 'result', got 'error'"
        );
        assert_eq!(
            check("<iq type='result' id='a'/>", "<iq type='result'/>").unwrap_err(),
            "<iq>: attribute 'id': expected 'a', missing"
        );
    }

    #[test]
    fn stanza_name_mismatch() {
        assert_eq!(
            check("<presence/>", "<message/>").unwrap_err(),
            "<message>: expected <presence>, got <message>"
        );
    }

    #[test]
    fn missing_child_is_named() {
        let e = check(
            "<message><subject/></message>",
            "<message><body>hi</body></message>",
        )
        .unwrap_err();
        assert_eq!(e, "<message>: missing child <subject/>");
    }

    #[test]
    fn text_is_compared_trimmed() {
        check(
            "<message><body>\n\t\tFinished!\n\t</body></message>",
            "<message><body>Finished!</body></message>",
        )
        .unwrap();
        assert_eq!(
            check(
                "<message><body>A</body></message>",
                "<message><body>B</body></message>"
            )
            .unwrap_err(),
            "<message>/<body>: text: expected 'A', got 'B'"
        );
        // Non-strict: no expected text means any text.
        check(
            "<message><subject/></message>",
            "<message><subject>Topic</subject></message>",
        )
        .unwrap();
    }

    #[test]
    fn own_namespace_makes_the_subtree_strict() {
        let expected = format!(
            "<presence><x xmlns='{MUC_USER}'><status code='201'/><item affiliation='owner'/></x></presence>"
        );
        check(
            &expected,
            &format!("<presence><x xmlns='{MUC_USER}'><status code='201'/><item affiliation='owner'/></x></presence>"),
        )
        .unwrap();
        // Order.
        assert_eq!(
            check(
                &expected,
                &format!("<presence><x xmlns='{MUC_USER}'><item affiliation='owner'/><status code='201'/></x></presence>"),
            )
            .unwrap_err(),
            format!("<presence>/<x xmlns='{MUC_USER}'>: strict: child 1 is <item>, expected <status>")
        );
        // Extra child.
        assert_eq!(
            check(
                &expected,
                &format!("<presence><x xmlns='{MUC_USER}'><status code='201'/><item affiliation='owner'/><status code='110'/></x></presence>"),
            )
            .unwrap_err(),
            format!("<presence>/<x xmlns='{MUC_USER}'>: strict: expected 2 children, got 3: unexpected <status>")
        );
        // Missing child.
        assert_eq!(
            check(
                &expected,
                &format!("<presence><x xmlns='{MUC_USER}'><status code='201'/></x></presence>"),
            )
            .unwrap_err(),
            format!("<presence>/<x xmlns='{MUC_USER}'>: strict: expected 2 children, got 1: child 2 (<item>) is missing")
        );
        // Extra attribute deep in the subtree.
        assert_eq!(
            check(
                &expected,
                &format!("<presence><x xmlns='{MUC_USER}'><status code='201'/><item affiliation='owner' role='moderator'/></x></presence>"),
            )
            .unwrap_err(),
            format!("<presence>/<x xmlns='{MUC_USER}'>/<item>[2]: strict: unexpected attribute 'role'='moderator'")
        );
        // Text under a strict element: expected none, got some.
        assert_eq!(
            check(
                "<iq><query xmlns='q'/></iq>",
                "<iq><query xmlns='q'>text</query></iq>",
            )
            .unwrap_err(),
            "<iq>/<query xmlns='q'>: strict: expected no text, got 'text'"
        );
    }

    #[test]
    fn strict_ignores_whitespace_between_elements() {
        check(
            &format!("<presence>\n\t<x xmlns='{MUC_USER}'>\n\t\t<status code='110'/>\n\t</x>\n</presence>"),
            &format!("<presence><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"),
        )
        .unwrap();
    }

    #[test]
    fn same_namespace_child_is_not_strict() {
        // <error> is in jabber:client like its parent: extra attribute 'by' is fine.
        check(
            "<presence type='error'><error type='cancel'/></presence>",
            "<presence type='error'><error type='cancel' by='room@c'/></presence>",
        )
        .unwrap();
        // ...and xmlns repeated with the parent's value is not a new namespace.
        check(
            &format!(
                "<message><x xmlns='{MUC_USER}'><item xmlns='{MUC_USER}' jid='a@b'/></x></message>"
            ),
            &format!("<message><x xmlns='{MUC_USER}'><item jid='a@b'/></x></message>"),
        )
        .unwrap();
    }

    #[test]
    fn directive_overrides_the_namespace_rule() {
        // strict='false' on an element with its own namespace.
        check(
            &format!("<presence><x xmlns='{MUC_USER}' scansion:strict='false'><item/></x></presence>"),
            &format!("<presence><x xmlns='{MUC_USER}' extra='1'><status code='1'/><item role='x'/></x></presence>"),
        )
        .unwrap();
        // strict='true' on an element in its parent's namespace.
        assert_eq!(
            check(
                "<iq scansion:strict='true' type='result'/>",
                "<iq type='result' id='x'/>",
            )
            .unwrap_err(),
            "<iq>: strict: unexpected attribute 'id'='x'"
        );
        // The directive itself is not an attribute to compare.
        check(
            "<iq><query xmlns='q' node='n' scansion:strict='true'/></iq>",
            "<iq><query xmlns='q' node='n'/></iq>",
        )
        .unwrap();
    }

    #[test]
    fn loose_only_strict_true_is_strict() {
        let expected = "<iq><query xmlns='disco'><identity name='J'/></query></iq>";
        let received = "<iq><query xmlns='disco' node='x'><identity name='J' type='text'/><feature/></query></iq>";
        assert!(check(expected, received).is_err());
        check_loose(expected, received).unwrap();
        assert_eq!(
            check_loose(
                "<iq><query xmlns='disco' scansion:strict='true'/></iq>",
                "<iq><query xmlns='disco' node='x'/></iq>",
            )
            .unwrap_err(),
            "<iq>/<query xmlns='disco'>: strict: unexpected attribute 'node'='x'"
        );
        // Loose still requires expected children and attributes.
        assert_eq!(
            check_loose("<presence><x xmlns='muc'/></presence>", "<presence/>",).unwrap_err(),
            "<presence>: missing child <x xmlns='muc'/>"
        );
    }

    #[test]
    fn any_value_needs_the_attribute() {
        check("<iq id='{scansion:any}'/>", "<iq id='whatever'/>").unwrap();
        assert_eq!(
            check("<iq id='{scansion:any}'/>", "<iq/>").unwrap_err(),
            "<iq>: attribute 'id': expected any value, missing"
        );
    }

    #[test]
    fn each_expected_child_needs_its_own_received_child() {
        check("<m><item/><item/></m>", "<m><item a='1'/><item a='2'/></m>").unwrap();
        assert!(check("<m><item/><item/></m>", "<m><item/></m>").is_err());
        // A greedy choice would take the first <status> for the first
        // expected child; the second needs it.
        check(
            "<m><status/><status code='1'/></m>",
            "<m><status code='1'/><status code='2'/></m>",
        )
        .unwrap();
    }

    #[test]
    fn closest_candidate_explains_a_missing_child() {
        let e = check(
            "<iq><query xmlns='q'><item jid='a@b'/></query><foo/></iq>",
            "<iq><foo/><query xmlns='q'><item jid='c@d'/></query></iq>",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "<iq>/<query xmlns='q'>/<item>[1]: attribute 'jid': expected 'a@b', got 'c@d'"
        );
    }

    #[test]
    fn closeness_prefers_deeper_mismatches() {
        let expected = el("<presence from='a'><x xmlns='u'><item role='r'/></x></presence>");
        let far = match_stanza(&expected, &el("<presence from='b'/>"), false).unwrap_err();
        let near = match_stanza(
            &expected,
            &el("<presence from='a'><x xmlns='u'><item role='s'/></x></presence>"),
            false,
        )
        .unwrap_err();
        assert!(near.closeness > far.closeness, "{near:?} vs {far:?}");
    }
}
