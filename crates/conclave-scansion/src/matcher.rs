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
//! - `{scansion:capture:NAME}` as an attribute value or as an element's
//!   (trimmed) text matches any value, but the attribute or a non-empty text
//!   must be present; [`match_capturing`] returns the values so matched, by
//!   name. They come only from a match of the whole stanza: where several
//!   received children could match an expected child, the values are those
//!   of the child the final assignment took.
//!
//! A mismatch is explained in one line: the path to the element, then what
//! differs (which attribute, which child).

use std::fmt;

use minidom::Element;

use crate::script::{NS_CLIENT, NS_SCANSION};

/// The attribute value that matches any value.
pub const ANY: &str = "{scansion:any}";

/// How a capture starts: `{scansion:capture:NAME}`.
pub const CAPTURE_PREFIX: &str = "{scansion:capture:";

/// Values captured by a match, as `(name, value)`, in the order the
/// captures are met (attributes, then text, then children).
pub type Captured = Vec<(String, String)>;

/// The name of the capture `value` is, if it is one.
pub fn capture_name(value: &str) -> Option<&str> {
    value
        .strip_prefix(CAPTURE_PREFIX)
        .and_then(|rest| rest.strip_suffix('}'))
}

/// Whether an expected attribute value matches any received value.
fn matches_any(value: &str) -> bool {
    value == ANY || capture_name(value).is_some()
}

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
    match_capturing(expected, received, loose).map(|_| ())
}

/// Matches `received` against `expected` (both top-level stanzas) and
/// returns the values its captures matched.
pub fn match_capturing(
    expected: &Element,
    received: &Element,
    loose: bool,
) -> Result<Captured, Mismatch> {
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

/// What a capture expects, for a mismatch report.
fn capture_wanted(name: &str) -> String {
    format!("a value to capture as '{name}'")
}

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
                    .is_some_and(|got| got == value.as_str() || matches_any(value))
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
    ) -> Result<Captured, Failure> {
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
        let mut captured = Captured::new();

        // Attributes.
        for ((ns, name), value) in expected.attrs().iter() {
            if is_directive(ns) {
                continue;
            }
            let shown = attr_name(ns, name.as_str());
            let capture = capture_name(value);
            match received.attrs().get(ns, name.as_str()) {
                None => {
                    let want = if value == ANY {
                        "any value".to_owned()
                    } else if let Some(c) = capture {
                        capture_wanted(c)
                    } else {
                        format!("'{value}'")
                    };
                    return fail(
                        path,
                        format!("attribute '{shown}': expected {want}, missing"),
                    );
                }
                Some(got) if !matches_any(value) && got != value.as_str() => {
                    return fail(
                        path,
                        format!("attribute '{shown}': expected '{value}', got '{got}'"),
                    );
                }
                Some(got) => {
                    if let Some(c) = capture {
                        captured.push((c.to_owned(), got.clone()));
                    }
                }
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
        if let Some(c) = capture_name(want) {
            if got.is_empty() {
                return fail(
                    path,
                    format!("text: expected {}, got none", capture_wanted(c)),
                );
            }
            captured.push((c.to_owned(), got.to_owned()));
        } else if (strict || !want.is_empty()) && want != got {
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
                captured.extend(self.element(w, g, &ns, true, Some(i + 1), path)?);
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
            captured.extend(self.unordered_children(&want, &got, &ns, inherited, path)?);
        }
        path.pop();
        Ok(captured)
    }

    /// Every expected child matches a distinct received child, in any
    /// order; returns the captures of the children the assignment took.
    fn unordered_children(
        &self,
        want: &[&Element],
        got: &[&Element],
        ns: &str,
        inherited: bool,
        path: &[String],
    ) -> Result<Captured, Failure> {
        // compat[i]: received children that expected child i matches, and
        // what each match captured.
        let mut compat: Vec<Vec<usize>> = Vec::with_capacity(want.len());
        let mut captures: Vec<Vec<Captured>> = Vec::with_capacity(want.len());
        for w in want {
            let mut ok = Vec::new();
            let mut caught = Vec::new();
            let mut closest: Option<Failure> = None;
            for (j, g) in got.iter().enumerate() {
                match self.element(w, g, ns, inherited, None, &mut path.to_vec()) {
                    Ok(c) => {
                        ok.push(j);
                        caught.push(c);
                    }
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
            captures.push(caught);
        }
        let mut used = vec![false; got.len()];
        let mut chosen = Vec::with_capacity(want.len());
        if assign(&compat, 0, &mut used, &mut chosen) {
            // chosen[i]: the index, in compat[i], of the match taken.
            let mut out = Captured::new();
            for (i, k) in chosen.into_iter().enumerate() {
                if let Some(c) = captures.get_mut(i).and_then(|c| c.get_mut(k)) {
                    out.append(c);
                }
            }
            Ok(out)
        } else {
            Err((
                path.len() - 1,
                path_of(path),
                "expected children match only the same received children (duplicates expected, too few received)".into(),
            ))
        }
    }
}

/// Finds distinct received children for all expected children, trying
/// received children in order; `chosen[i]` is the position in `compat[i]`
/// of the one taken for expected child `i`.
fn assign(compat: &[Vec<usize>], i: usize, used: &mut [bool], chosen: &mut Vec<usize>) -> bool {
    let Some(options) = compat.get(i) else {
        return true;
    };
    for (k, &j) in options.iter().enumerate() {
        if !used[j] {
            used[j] = true;
            chosen.push(k);
            if assign(compat, i + 1, used, chosen) {
                return true;
            }
            chosen.pop();
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

    fn capture(expected: &str, received: &str) -> Result<Captured, String> {
        match_capturing(&el(expected), &el(received), false).map_err(|m| m.to_string())
    }

    fn pairs(list: &[(&str, &str)]) -> Captured {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn capture_in_an_attribute_matches_any_value_and_returns_it() {
        assert_eq!(
            capture(
                "<iq type='result' id='{scansion:capture:id}'/>",
                "<iq type='result' id='a&apos;1' to='x'/>"
            ),
            Ok(pairs(&[("id", "a'1")]))
        );
        assert_eq!(
            capture(
                "<iq type='result' id='{scansion:capture:id}'/>",
                "<iq type='result'/>"
            ),
            Err("<iq>: attribute 'id': expected a value to capture as 'id', missing".into())
        );
        assert_eq!(
            capture(
                "<iq type='result' id='{scansion:capture:id}'/>",
                "<iq type='error' id='1'/>"
            ),
            Err("<iq>: attribute 'type': expected 'result', got 'error'".into())
        );
        // match_stanza agrees.
        assert!(
            match_stanza(&el("<iq id='{scansion:capture:id}'/>"), &el("<iq/>"), false).is_err()
        );
    }

    #[test]
    fn capture_in_a_text_matches_any_text_and_returns_it_trimmed() {
        assert_eq!(
            capture(
                "<message><body>\n\t\t{scansion:capture:said}\n\t</body></message>",
                "<message><body> hello there </body><x/></message>"
            ),
            Ok(pairs(&[("said", "hello there")]))
        );
        assert_eq!(
            capture(
                "<message><body>{scansion:capture:said}</body></message>",
                "<message><body>  </body></message>"
            ),
            Err("<message>/<body>: text: expected a value to capture as 'said', got none".into())
        );
        assert_eq!(
            capture(
                "<message><body>{scansion:capture:said}</body></message>",
                "<message/>"
            ),
            Err("<message>: missing child <body/>".into())
        );
    }

    #[test]
    fn captures_follow_strict_and_loose_rules_like_any() {
        let expected = format!(
            "<presence><x xmlns='{MUC_USER}'><item jid='{{scansion:capture:jid}}' role='{{scansion:any}}'/><status code='110'/></x></presence>"
        );
        // Strict (own namespace): the captured attribute must be there...
        assert_eq!(
            capture(
                &expected,
                &format!("<presence><x xmlns='{MUC_USER}'><item jid='r@l/p' role='none'/><status code='110'/></x></presence>")
            ),
            Ok(pairs(&[("jid", "r@l/p")]))
        );
        assert_eq!(
            capture(
                &expected,
                &format!("<presence><x xmlns='{MUC_USER}'><item role='none'/><status code='110'/></x></presence>")
            ),
            Err(format!("<presence>/<x xmlns='{MUC_USER}'>/<item>[1]: attribute 'jid': expected a value to capture as 'jid', missing"))
        );
        // ...and no other one may be.
        assert_eq!(
            capture(
                &expected,
                &format!("<presence><x xmlns='{MUC_USER}'><item jid='r@l/p' role='none' nick='R'/><status code='110'/></x></presence>")
            ),
            Err(format!("<presence>/<x xmlns='{MUC_USER}'>/<item>[1]: strict: unexpected attribute 'nick'='R'"))
        );
        // Strict text.
        assert_eq!(
            capture(
                "<iq><q xmlns='q'>{scansion:capture:t}</q></iq>",
                "<iq><q xmlns='q'/></iq>"
            ),
            Err("<iq>/<q xmlns='q'>: text: expected a value to capture as 't', got none".into())
        );
        // Loose: the extra attribute is fine, the captured one still needed.
        let loose = |received: &str| {
            match_capturing(&el(&expected), &el(received), true).map_err(|m| m.to_string())
        };
        assert_eq!(
            loose(&format!("<presence><x xmlns='{MUC_USER}'><status code='110'/><item nick='R' jid='j' role='r'/></x></presence>")),
            Ok(pairs(&[("jid", "j")]))
        );
        assert!(loose(&format!(
            "<presence><x xmlns='{MUC_USER}'><status code='110'/><item nick='R' role='r'/></x></presence>"
        ))
        .is_err());
    }

    #[test]
    fn captures_come_only_from_the_children_that_matched() {
        // The first <item> matches the capture, then fails on 'kind'.
        assert_eq!(
            capture(
                "<m><item a='{scansion:capture:x}' kind='good'/></m>",
                "<m><item a='1' kind='bad'/><item a='2' kind='good'/></m>"
            ),
            Ok(pairs(&[("x", "2")]))
        );
        // Both received items match the capturing child, but the second
        // expected child needs the first: the capture is the second's.
        assert_eq!(
            capture(
                "<m><item a='{scansion:capture:x}'/><item a='1'/></m>",
                "<m><item a='1'/><item a='2'/></m>"
            ),
            Ok(pairs(&[("x", "2")]))
        );
        // A stanza that does not match as a whole captures nothing.
        assert!(capture(
            "<m><item a='{scansion:capture:x}'/><other/></m>",
            "<m><item a='1'/></m>"
        )
        .is_err());
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
