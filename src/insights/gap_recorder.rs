//! Knowledge-base gaps: every question a reply left unanswered, heard on
//! the conversation event bus, is kept for the admin page's Gaps tab and
//! the insights page.

use std::sync::Arc;

use crate::conversation::events::{ConversationEvent, Unanswered};
use crate::state::AppState;

/// Records every gap published from now on. Ends when the state is
/// dropped.
pub fn follow(state: &Arc<AppState>) {
    state
        .events
        .listen("gap recorder", state, |state, event| async move {
            if let ConversationEvent::Unanswered(gap) = event {
                record(&state, &gap).await;
            }
        });
}

async fn record(state: &AppState, gap: &Unanswered) {
    // A hand-off is about the earlier question, whose embedding was not at
    // hand.
    let embedding = match &gap.embedding {
        Some(e) => Some(e.clone()),
        None => state.understanding.embed(&gap.question).await.ok(),
    };
    // Every admin reads the gaps: a customer's e-mail address or card
    // number in a question stays in their conversation only.
    let question = crate::privacy::redact(&gap.question).into_owned();
    if let Err(e) = state
        .store
        .record_gap(gap.session, question, gap.reason, gap.best, embedding)
        .await
    {
        tracing::error!(error = %e, "cannot record a knowledge-base gap");
    }
}
