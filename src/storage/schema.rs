//! Schema migrations, applied in order and recorded in `user_version`.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        created_at_ms INTEGER NOT NULL,
        last_seq INTEGER NOT NULL
    );
    CREATE TABLE messages (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        seq INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('customer', 'bot')),
        text TEXT NOT NULL,
        client_id TEXT,
        reply_id TEXT,
        citations TEXT,
        grounded INTEGER,
        kind TEXT,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (session_id, seq)
    );
    CREATE UNIQUE INDEX messages_customer_client_id
        ON messages (session_id, client_id) WHERE role = 'customer';
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // Understanding: each message's intent and sentiment (JSON), and why a
    // session was flagged for a person.
    "ALTER TABLE messages ADD COLUMN intent TEXT;
    ALTER TABLE messages ADD COLUMN sentiment TEXT;
    ALTER TABLE sessions ADD COLUMN flag_reason TEXT;
    ALTER TABLE sessions ADD COLUMN flagged_at_ms INTEGER;",
    // The knowledge base: every version of every article (the source of
    // truth; the search index is derived), and the questions it could not
    // answer.
    "CREATE TABLE article_versions (
        article_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        tags TEXT NOT NULL,
        url TEXT,
        retired INTEGER NOT NULL,
        change TEXT NOT NULL CHECK (change IN ('created', 'updated', 'retired', 'restored')),
        author TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (article_id, version)
    );
    CREATE TABLE articles (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        retired INTEGER NOT NULL,
        FOREIGN KEY (id, version) REFERENCES article_versions (article_id, version)
    );
    CREATE TABLE gaps (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        question TEXT NOT NULL,
        reason TEXT NOT NULL,
        score REAL,
        embedding BLOB,
        at_ms INTEGER NOT NULL
    );",
    // The agent console: agents' messages and conversation events (a person
    // joined, left, closed) are stored messages too, so they replay in
    // order; who handles a conversation; agent accounts and sign-ins.
    // SQLite cannot widen a CHECK, so `messages` is rebuilt.
    "CREATE TABLE messages_v4 (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        seq INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('customer', 'bot', 'agent', 'event')),
        text TEXT NOT NULL,
        client_id TEXT,
        reply_id TEXT,
        citations TEXT,
        grounded INTEGER,
        kind TEXT,
        created_at_ms INTEGER NOT NULL,
        intent TEXT,
        sentiment TEXT,
        author TEXT,
        PRIMARY KEY (session_id, seq)
    );
    INSERT INTO messages_v4 (session_id, seq, role, text, client_id, reply_id, citations,
                             grounded, kind, created_at_ms, intent, sentiment)
        SELECT session_id, seq, role, text, client_id, reply_id, citations,
               grounded, kind, created_at_ms, intent, sentiment FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v4 RENAME TO messages;
    CREATE UNIQUE INDEX messages_customer_client_id
        ON messages (session_id, client_id) WHERE role = 'customer';
    ALTER TABLE sessions ADD COLUMN status TEXT NOT NULL DEFAULT 'bot'
        CHECK (status IN ('bot', 'agent', 'closed'));
    ALTER TABLE sessions ADD COLUMN agent TEXT;
    ALTER TABLE sessions ADD COLUMN outcome TEXT;
    ALTER TABLE sessions ADD COLUMN summary TEXT;
    CREATE TABLE agents (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE agent_sessions (
        token_sha256 TEXT PRIMARY KEY,
        agent TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
        expires_at_ms INTEGER NOT NULL
    );",
    // v5: what a bot reply asked the customer (an offer and its quick
    // replies); the example questions staff give an article.
    "ALTER TABLE messages ADD COLUMN offer TEXT;
    ALTER TABLE article_versions ADD COLUMN questions TEXT NOT NULL DEFAULT '[]'",
    // v6: a record of every export and erasure of customer data and every
    // retention run: who, when, how many conversations, never the content.
    "CREATE TABLE privacy_audit (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('export', 'erase', 'retention')),
        selector TEXT NOT NULL CHECK (selector IN ('session', 'email', 'age')),
        conversations INTEGER NOT NULL
    );
    CREATE INDEX gaps_session ON gaps (session_id);",
    // v7: staff roles. An agent works in the console; an admin also edits
    // the knowledge base and answers customers' data requests, under their
    // own name.
    "ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent'
        CHECK (role IN ('agent', 'admin'));",
    // v8: the demo shop's orders, served behind the shop contract when no
    // real shop is connected (a real shop's orders are never stored here).
    "CREATE TABLE demo_orders (
        number TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        postcode TEXT NOT NULL,
        body TEXT NOT NULL
    );",
    // v9: the demo shop's returns; the orders looked up in a conversation,
    // shown beside it in the console (what the shop said, no more); the
    // customer a shop site vouched for with a signed identity.
    "CREATE TABLE demo_returns (
        id TEXT PRIMARY KEY,
        order_number TEXT NOT NULL,
        items TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE conversation_orders (
        session_id TEXT NOT NULL,
        number TEXT NOT NULL,
        body TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (session_id, number)
    );
    ALTER TABLE sessions ADD COLUMN customer_id TEXT;
    ALTER TABLE sessions ADD COLUMN customer_email TEXT;",
    // v10: order details that did not match in a conversation, so the
    // limit on guesses holds after a restart or an idle eviction too.
    "ALTER TABLE sessions ADD COLUMN failed_order_checks INTEGER NOT NULL DEFAULT 0;",
    // v11: the customer's rating of a conversation (1-5, a comment), and an
    // index for the insights' periods.
    "ALTER TABLE sessions ADD COLUMN rating INTEGER;
    ALTER TABLE sessions ADD COLUMN rating_comment TEXT;
    CREATE INDEX sessions_created ON sessions (created_at_ms);",
    // v12: what a message raises (its kind, the products and aspects it
    // mentions, each with a sentiment), as JSON beside its intent, so it is
    // erased and expired with the message.
    "ALTER TABLE messages ADD COLUMN demand TEXT;",
    // v13: a customer's profile gathers the conversations of one signed
    // identity.
    "CREATE INDEX sessions_customer ON sessions (customer_id) WHERE customer_id IS NOT NULL;",
    // v14: what keeps the console's list and the insights fast with a year
    // of a busy shop: each conversation's latest activity, kept by a
    // trigger, indexed in the list's order; events indexed by kind (did a
    // person join, was it closed).
    "ALTER TABLE sessions ADD COLUMN last_at_ms INTEGER;
    UPDATE sessions SET last_at_ms = COALESCE(
        (SELECT MAX(m.created_at_ms) FROM messages m WHERE m.session_id = sessions.id),
        created_at_ms);
    CREATE TRIGGER sessions_last_at AFTER INSERT ON messages BEGIN
        UPDATE sessions SET last_at_ms = NEW.created_at_ms WHERE id = NEW.session_id;
    END;
    CREATE INDEX sessions_console ON sessions
        ((flag_reason IS NULL OR status = 'closed'), COALESCE(last_at_ms, created_at_ms) DESC);
    CREATE INDEX messages_events ON messages (session_id, kind) WHERE role = 'event';",
    // v15: the insights' sums per UTC day of conversation start, kept once
    // the day's conversations are all over; any change to one of them (a
    // message, its understanding, a flag, a close, a rating, an erasure)
    // drops its day, which is counted afresh when next asked for.
    "CREATE TABLE insight_days (
        day INTEGER PRIMARY KEY,
        abandoned_after_ms INTEGER NOT NULL,
        tally TEXT NOT NULL
    );
    CREATE TRIGGER insight_days_session_changed AFTER UPDATE ON sessions BEGIN
        DELETE FROM insight_days WHERE day = OLD.created_at_ms / 86400000;
    END;
    CREATE TRIGGER insight_days_session_gone AFTER DELETE ON sessions BEGIN
        DELETE FROM insight_days WHERE day = OLD.created_at_ms / 86400000;
    END;
    CREATE TRIGGER insight_days_message_added AFTER INSERT ON messages BEGIN
        DELETE FROM insight_days WHERE day =
            (SELECT created_at_ms / 86400000 FROM sessions WHERE id = NEW.session_id);
    END;
    CREATE TRIGGER insight_days_message_changed AFTER UPDATE ON messages BEGIN
        DELETE FROM insight_days WHERE day =
            (SELECT created_at_ms / 86400000 FROM sessions WHERE id = NEW.session_id);
    END;
    CREATE TRIGGER insight_days_message_gone AFTER DELETE ON messages BEGIN
        DELETE FROM insight_days WHERE day =
            (SELECT created_at_ms / 86400000 FROM sessions WHERE id = OLD.session_id);
    END;",
    // v16: the widget's visitor id (random, kept by the browser), so an
    // anonymous customer's profile gathers their conversations too.
    "ALTER TABLE sessions ADD COLUMN visitor_id TEXT;
    CREATE INDEX sessions_visitor ON sessions (visitor_id) WHERE visitor_id IS NOT NULL;",
    // v17: a conversation moved to another day (an import of history) drops
    // the day it moves to as well as the one it left: a kept day, empty
    // ones too (a look at a period keeps all its whole days), would go
    // stale otherwise.
    "DROP TRIGGER insight_days_session_changed;
    CREATE TRIGGER insight_days_session_changed AFTER UPDATE ON sessions BEGIN
        DELETE FROM insight_days
        WHERE day IN (OLD.created_at_ms / 86400000, NEW.created_at_ms / 86400000);
    END;",
    // v18: beside a kept day's sums, its conversations as the insights list
    // them and the words its customers used (storage/topic_days.rs), kept
    // once asked for and dropped with the day, so a month's drill-down,
    // CSV and rising topics read rows instead of every message again.
    "ALTER TABLE insight_days ADD COLUMN conversations TEXT;
    ALTER TABLE insight_days ADD COLUMN sessions TEXT;
    CREATE TABLE insight_day_terms (
        day INTEGER NOT NULL,
        term TEXT NOT NULL,
        conversations INTEGER NOT NULL,
        uses TEXT NOT NULL,
        PRIMARY KEY (day, term)
    ) WITHOUT ROWID;
    CREATE TRIGGER insight_day_terms_dropped AFTER DELETE ON insight_days BEGIN
        DELETE FROM insight_day_terms WHERE day = OLD.day;
    END;",
];

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}
