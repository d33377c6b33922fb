//! XMPP Ping (XEP-0199): the server answers pings addressed to itself or,
//! on their behalf, to its accounts' bare JIDs.

use async_trait::async_trait;

use crate::hub::module::{Ctx, Declarations, IqRequest, IqScope, Module, Outs};

pub const NS: &str = "urn:xmpp:ping";

pub struct Ping;

#[async_trait]
impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Server, NS)
            .iq(IqScope::Account, NS)
            .server_feature(NS)
            .account_feature(NS);
    }

    async fn iq(&self, _: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        if req.is_get() && req.payload.name() == "ping" {
            req.result(None, None)
        } else {
            req.unsupported()
        }
    }
}
