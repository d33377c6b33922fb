//! Entity time (XEP-0202): the server's clock, in UTC.

use async_trait::async_trait;
use chrono::{FixedOffset, Utc};
use xmpp_parsers::time::TimeResult;

use crate::hub::module::{Ctx, Declarations, IqRequest, IqScope, Module, Outs};

pub const NS: &str = "urn:xmpp:time";

pub struct Time;

#[async_trait]
impl Module for Time {
    fn name(&self) -> &'static str {
        "time"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Server, NS).server_feature(NS);
    }

    async fn iq(&self, _: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        let Some(tz_offset) = FixedOffset::east_opt(0) else {
            return req.unsupported();
        };
        if !req.is_get() || req.payload.name() != "time" {
            return req.unsupported();
        }
        let result = TimeResult {
            tz_offset,
            utc: Utc::now(),
        };
        req.result(None, Some(result.into()))
    }
}
