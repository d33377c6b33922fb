//! Small helpers over `minidom` for building and reading stanzas, and the
//! namespaces the group-chat service speaks.

use jid::Jid;
use minidom::rxml::{Namespace, NcName};
use minidom::Element;
use xmpp_parsers::data_forms::{
    DataForm, DataFormType, Field, FieldType, Option_ as DataFormOption,
};

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

/// A data form received from a client, read with `DataForm`. Fields are
/// looked up by `var` (the first of that name) whatever their type, so a
/// `FORM_TYPE` field counts even where XEP-0068 would ignore it.
pub struct Form(DataForm);

impl Form {
    /// Reads a `jabber:x:data` form; `None` when `el` is not a valid one.
    pub fn parse(el: &Element) -> Option<Form> {
        DataForm::try_from(el.clone()).ok().map(Form)
    }

    pub fn type_(&self) -> &DataFormType {
        &self.0.type_
    }

    pub fn values(&self, var: &str) -> Option<&[String]> {
        self.0
            .fields
            .iter()
            .find(|f| f.var.as_deref() == Some(var))
            .map(|f| f.values.as_slice())
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

/// A field of a form the service sends, with its label and values.
pub fn field<S: Into<String>>(
    var: &str,
    type_: FieldType,
    label: &str,
    values: impl IntoIterator<Item = S>,
) -> Field {
    Field {
        label: Some(label.to_owned()),
        values: values.into_iter().map(Into::into).collect(),
        ..Field::new(var, type_)
    }
}

/// A `list-single`/`list-multi` field with its options (value, label).
pub fn list_field<S: Into<String>>(
    var: &str,
    type_: FieldType,
    label: &str,
    values: impl IntoIterator<Item = S>,
    options: &[(&str, &str)],
) -> Field {
    Field {
        options: options
            .iter()
            .map(|(value, label)| DataFormOption {
                label: Some((*label).to_owned()),
                value: (*value).to_owned(),
            })
            .collect(),
        ..field(var, type_, label, values)
    }
}

/// The element of a form the service sends. Two details that `DataForm`
/// cannot express are put back, as the service has always sent them:
/// `type='text-single'` (xmpp-parsers leaves out the default type), and
/// the values of a list field before its options (`Field` writes the
/// options first).
pub fn form_element(form: DataForm) -> Element {
    let mut x = Element::from(form);
    for f in x.children_mut().filter(|c| c.is("field", NS_DATA)) {
        if f.attr("type").is_none() {
            set_attr(f, "type", "text-single");
        }
        let mut options = Vec::new();
        while let Some(o) = f.remove_child("option", NS_DATA) {
            options.push(o);
        }
        for o in options {
            f.append_child(o);
        }
    }
    x
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse;

    #[test]
    fn a_received_form_is_read_by_var() {
        let f = Form::parse(&parse(concat!(
            "<x xmlns='jabber:x:data' type='submit'>",
            "<field var='a' type='text-single'><value>1</value></field>",
            "<field var='b' type='list-multi'><value>x</value><value>y</value></field>",
            "<field var='c'/>",
            "<field var='a'><value>2</value></field>",
            "<field var='FORM_TYPE'><value>urn:t</value></field>",
            "</x>"
        )))
        .expect("a valid form");
        assert_eq!(f.type_(), &DataFormType::Submit);
        assert_eq!(f.value("a"), Some("1"), "the first field of that name");
        assert_eq!(f.values("b"), Some(&["x".to_owned(), "y".to_owned()][..]));
        assert_eq!(f.value("c"), Some(""));
        assert_eq!(f.value("d"), None);
        assert_eq!(f.form_type(), Some("urn:t"));
    }

    #[test]
    fn what_is_not_a_valid_form_is_not_read() {
        for s in [
            "<x xmlns='jabber:x:data'/>",
            "<x xmlns='jabber:x:data' type='weird'/>",
            "<x xmlns='jabber:x:data' type='submit'><field><value>1</value></field></x>",
            "<x xmlns='jabber:x:data' type='submit'><field var='a' type='odd'/></x>",
            "<x xmlns='urn:other' type='submit'/>",
        ] {
            assert!(Form::parse(&parse(s)).is_none(), "{s}");
        }
    }
}
