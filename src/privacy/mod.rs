//! Privacy by default: personal data kept out of logs and the model's
//! prompt (`redact`), conversations deleted after the retention period, and
//! one customer's data exported or erased on request (`requests`), each
//! erasure and export leaving an audit record without the content.

pub mod redact;
pub mod requests;

pub use redact::{PiiKind, redact, redact_found};

use serde::Serialize;

use crate::storage::privacy::ExportedConversation;

/// A customer's conversations as handed out, redacted unless the export is
/// the customer's own access request.
#[derive(Debug, Serialize)]
pub struct Export {
    pub redacted: bool,
    pub conversations: Vec<ExportedConversation>,
}

impl Export {
    pub fn new(mut conversations: Vec<ExportedConversation>, redact: bool) -> Export {
        if redact {
            for m in conversations.iter_mut().flat_map(|c| c.messages.iter_mut()) {
                if let std::borrow::Cow::Owned(text) = redact::redact(&m.text) {
                    m.text = text;
                }
            }
        }
        Export {
            redacted: redact,
            conversations,
        }
    }
}
