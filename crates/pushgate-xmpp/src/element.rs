//! A small owned, namespace-resolved element tree: what the parser yields for each stanza.
//!
//! XMPP stanzas are tiny and shallow, so an owned tree is simpler to inspect than a pull
//! parser and costs nothing measurable at CCS rates.

use std::fmt;

use crate::ns;

/// One XML element with its namespace resolved, as read from (or to be written to) a stream.
///
/// Names are local names (the prefix is resolved away into `ns`), because XMPP peers are free to
/// choose prefixes: CCS itself has been seen sending `<data:gcm xmlns:data="google:mobile:data">`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name, without prefix (`gcm`, `message`, `features`).
    pub name: String,
    /// Namespace URI the element's prefix (or default namespace) resolved to; empty if none.
    pub ns: String,
    /// Attributes in document order, names as written (`id`, `xml:lang`); namespace
    /// declarations (`xmlns`, `xmlns:p`) are not included, they are resolved into `ns`.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// All character data directly inside this element, concatenated (entity and character
    /// references resolved, CDATA included). XMPP has no mixed content worth preserving.
    pub text: String,
}

impl Element {
    /// A new element with no attributes, children or text; used by builders and tests.
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            ns: ns.into(),
            ..Element::default()
        }
    }

    /// Builder: adds an attribute.
    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attrs.push((name.into(), value.into()));
        self
    }

    /// Builder: adds a child element.
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// Builder: sets the text content.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// True if this element has local name `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The value of the attribute named exactly `name` (as written, e.g. `xml:lang`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child with local name `name` in namespace `ns`.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(name, ns))
    }

    /// The first child in namespace `ns`, whatever its name (stream and stanza error
    /// conditions are told apart by name inside a fixed namespace).
    pub fn child_in(&self, ns: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns)
    }

    /// True for the SASL `<auth>` and `<response>` elements, whose text carries credentials.
    fn carries_secret(&self) -> bool {
        self.ns == ns::SASL && (self.name == "auth" || self.name == "response")
    }
}

/// Debug output redacts the text of SASL `<auth>`/`<response>`, which is base64 of the password:
/// stanzas end up in logs through `{:?}` and the key must never be logged.
impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Element");
        d.field("name", &self.name).field("ns", &self.ns);
        if !self.attrs.is_empty() {
            d.field("attrs", &self.attrs);
        }
        if !self.children.is_empty() {
            d.field("children", &self.children);
        }
        if self.carries_secret() && !self.text.is_empty() {
            d.field("text", &"<redacted>");
        } else if !self.text.is_empty() {
            d.field("text", &self.text);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let el = Element::new("message", ns::CLIENT)
            .with_attr("id", "m1")
            .with_child(Element::new("gcm", ns::GCM).with_text("{}"));
        assert!(el.is("message", ns::CLIENT));
        assert_eq!(el.attr("id"), Some("m1"));
        assert_eq!(el.attr("to"), None);
        assert_eq!(
            el.child("gcm", ns::GCM).map(|g| g.text.as_str()),
            Some("{}")
        );
        assert!(el.child("gcm", "other").is_none());
        assert!(el.child_in(ns::GCM).is_some());
    }

    #[test]
    fn debug_redacts_sasl_payload() {
        let auth = Element::new("auth", ns::SASL)
            .with_attr("mechanism", "PLAIN")
            .with_text("AHNlY3JldAB0b3BzZWNyZXQ=");
        let dbg = format!("{auth:?}");
        assert!(!dbg.contains("AHNlY3JldAB0b3BzZWNyZXQ="), "{dbg}");
        assert!(dbg.contains("redacted"));
        let msg = Element::new("gcm", ns::GCM).with_text("{\"a\":1}");
        assert!(format!("{msg:?}").contains("{\\\"a\\\":1}"));
    }
}
