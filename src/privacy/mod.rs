//! Privacy by default: personal data kept out of logs and the model's
//! prompt (`redact`), conversations deleted after the retention period, and
//! one customer's data exported or erased on request (`requests`), each
//! erasure and export leaving an audit record without the content.

pub mod redact;
pub mod requests;

pub use redact::{PiiKind, redact, redact_found};
