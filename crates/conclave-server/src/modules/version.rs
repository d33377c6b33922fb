//! Software version (XEP-0092) of the server: name `Conclave` and the
//! crate version; the operating system only when `im.version_show_os` is set.

use async_trait::async_trait;
use xmpp_parsers::version::VersionResult;

use crate::hub::module::{Ctx, Declarations, IqRequest, IqScope, Module, Outs};

pub const NS: &str = "jabber:iq:version";

pub struct Version {
    /// Disclose the operating system.
    pub show_os: bool,
}

impl Version {
    fn result(&self) -> VersionResult {
        VersionResult {
            name: "Conclave".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            os: self.show_os.then(|| std::env::consts::OS.to_owned()),
        }
    }
}

#[async_trait]
impl Module for Version {
    fn name(&self) -> &'static str {
        "version"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Server, NS).server_feature(NS);
    }

    async fn iq(&self, _: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        if !req.is_get() || req.payload.name() != "query" {
            return req.unsupported();
        }
        req.result(None, Some(self.result().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_only_when_enabled() {
        let v = Version { show_os: false }.result();
        assert_eq!(v.name, "Conclave");
        assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
        assert!(v.os.is_none());
        let v = Version { show_os: true }.result();
        assert_eq!(v.os.as_deref(), Some(std::env::consts::OS));
    }
}
