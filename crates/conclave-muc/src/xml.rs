//! Small helpers over `minidom` for building and reading stanzas, and the
//! namespaces the group-chat service speaks.

use jid::Jid;
use minidom::rxml::{Namespace, NcName};
use minidom::Element;

pub const NS_CLIENT: &str = "jabber:client";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_MUC_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
pub const NS_MUC_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";
pub const NS_MUC_REGISTER: &str = "http://jabber.org/protocol/muc#register";
pub const NS_REGISTER: &str = "jabber:iq:register";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_DATA: &str = "jabber:x:data";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_DELAY: &str = "urn:xmpp:delay";
pub const NS_OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
pub const NS_PING: &str = "urn:xmpp:ping";

/// Sets (or replaces) an unqualified attribute. Names are the service's
/// own constants; an invalid name is ignored rather than panicking.
pub fn set_attr(el: &mut Element, name: &str, value: impl Into<String>) {
    if let Ok(n) = NcName::try_from(name) {
        el.set_attr(Namespace::NONE, n, value.into());
    }
}

/// Removes an unqualified attribute if present.
pub fn remove_attr(el: &mut Element, name: &str) {
    if let Ok(n) = NcName::try_from(name) {
        el.attrs_mut().remove(&Namespace::NONE, &n);
    }
}

/// Removes an `xml:lang` attribute if present.
pub fn remove_xml_lang(el: &mut Element) {
    if let Ok(n) = NcName::try_from("lang") {
        el.attrs_mut().remove(Namespace::xml(), &n);
    }
}

/// A new element `name` in namespace `ns` with the given attributes.
pub fn elem(name: &str, ns: &str, attrs: &[(&str, &str)]) -> Element {
    let mut e = Element::bare(name, ns);
    for (k, v) in attrs {
        set_attr(&mut e, k, *v);
    }
    e
}

/// A new element with text content.
pub fn text_elem(name: &str, ns: &str, text: &str) -> Element {
    let mut e = Element::bare(name, ns);
    e.append_text(text);
    e
}

/// A top-level stanza (`message`, `presence`, `iq`) from/to.
pub fn stanza(name: &str, from: &str, to: &str) -> Element {
    elem(name, NS_CLIENT, &[("from", from), ("to", to)])
}

/// The stanza's `type` attribute, or the default for its kind.
pub fn stanza_type(el: &Element) -> &str {
    match el.attr("type") {
        Some(t) => t,
        None => match el.name() {
            "message" => "normal",
            "presence" => "available",
            _ => "",
        },
    }
}

/// The `to` as a JID.
pub fn to_jid(el: &Element) -> Option<Jid> {
    el.attr("to").and_then(|t| Jid::new(t).ok())
}

/// A copy of `el` without the children that match `pred`.
pub fn without_children(el: &Element, pred: impl Fn(&Element) -> bool) -> Element {
    let mut out = Element::bare(el.name(), el.ns());
    for ((ns, name), value) in el.attrs().iter() {
        out.set_attr(ns.clone(), name.clone(), value.clone());
    }
    for child in el.children() {
        if !pred(child) {
            out.append_child(child.clone());
        }
    }
    if el.children().next().is_none() {
        let t = el.text();
        if !t.is_empty() {
            out.append_text(t);
        }
    }
    out
}

/// A submitted data form, read field by field (values in order).
pub struct Form {
    pub type_: String,
    pub fields: Vec<(String, Vec<String>)>,
}

impl Form {
    /// Reads a `jabber:x:data` form; `None` when `el` is not one.
    pub fn parse(el: &Element) -> Option<Form> {
        if !el.is("x", NS_DATA) {
            return None;
        }
        let type_ = el.attr("type").unwrap_or("").to_owned();
        let fields = el
            .children()
            .filter(|c| c.is("field", NS_DATA))
            .filter_map(|f| {
                let var = f.attr("var")?.to_owned();
                let values = f
                    .children()
                    .filter(|v| v.is("value", NS_DATA))
                    .map(|v| v.text())
                    .collect();
                Some((var, values))
            })
            .collect();
        Some(Form { type_, fields })
    }

    pub fn values(&self, var: &str) -> Option<&[String]> {
        self.fields
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, vals)| vals.as_slice())
    }

    /// The single value of `var`: `Some("")` for a field without a value.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.values(var)
            .map(|v| v.first().map(String::as_str).unwrap_or(""))
    }

    pub fn form_type(&self) -> Option<&str> {
        self.value("FORM_TYPE")
    }
}

/// One form field for a form the service sends.
pub fn field(var: &str, type_: &str, label: Option<&str>, values: &[&str]) -> Element {
    let mut f = elem("field", NS_DATA, &[("var", var)]);
    if !type_.is_empty() {
        set_attr(&mut f, "type", type_);
    }
    if let Some(l) = label {
        set_attr(&mut f, "label", l);
    }
    for v in values {
        f.append_child(text_elem("value", NS_DATA, v));
    }
    f
}

/// A `list-single`/`list-multi` field with its options.
pub fn list_field(
    var: &str,
    type_: &str,
    label: &str,
    values: &[&str],
    options: &[(&str, &str)],
) -> Element {
    let mut f = field(var, type_, Some(label), values);
    for (value, label) in options {
        let mut o = elem("option", NS_DATA, &[("label", label)]);
        o.append_child(text_elem("value", NS_DATA, value));
        f.append_child(o);
    }
    f
}

/// The `FORM_TYPE` hidden field.
pub fn form_type_field(form_type: &str) -> Element {
    field("FORM_TYPE", "hidden", None, &[form_type])
}

/// Boolean form values: `1`/`true` and `0`/`false`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "true" => Some(true),
        "0" | "false" | "" => Some(false),
        _ => None,
    }
}

pub fn bool_str(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}
