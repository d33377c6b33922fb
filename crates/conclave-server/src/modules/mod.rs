//! The server's own features, one file each, and the list that loads them.
//!
//! Each file holds one type implementing [`Module`]: what it declares
//! (IQ namespaces, hooks, disco and stream features) and its handlers.
//! [`load`] is the one place that lists them; hooks run in its order.

use std::sync::Arc;

use crate::config::Config;
use crate::hub::module::Module;

pub mod blocking;
pub mod carbons;
pub mod contact;
pub mod disco;
pub mod extdisco;
pub mod last;
pub mod offline;
pub mod ping;
pub mod presence;
pub mod private;
pub mod roster;
pub mod subscription;
pub mod time;
pub mod vcard;
pub mod version;

/// The modules of a server with this configuration, in hook order: the
/// block list first (it refuses stanzas before anything else sees them),
/// then carbons and last activity (they watch what presence handles),
/// then presence (which takes every presence stanza).
pub fn load(config: &Config) -> Vec<Arc<dyn Module>> {
    let im = &config.im;
    let roster = Arc::new(roster::Roster::default());
    let blocking = Arc::new(blocking::Blocking::new(im.max_blocklist_items));
    vec![
        Arc::new(disco::Disco),
        Arc::new(ping::Ping),
        blocking.clone(),
        Arc::new(carbons::Carbons::new(config.muc_domain())),
        Arc::new(last::Last::default()),
        roster.clone(),
        Arc::new(presence::Presence::new(roster, blocking)),
        Arc::new(offline::Offline {
            max_messages: config.limits.max_offline_messages,
        }),
        Arc::new(version::Version {
            show_os: im.version_show_os,
        }),
        Arc::new(time::Time),
        Arc::new(vcard::Vcard {
            max_bytes: im.max_vcard_bytes,
        }),
        Arc::new(private::Private {
            max_bytes: im.max_private_bytes,
            max_items: im.max_private_items,
        }),
        Arc::new(extdisco::ExtDisco {
            services: config.external_service.clone(),
        }),
        Arc::new(contact::Contact::new(&config.contact)),
    ]
}
