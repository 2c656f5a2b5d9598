//! HTTP routes and the server: health, readiness, the demo shop page, the
//! chat widget, the console and admin pages, article pages for citations,
//! and the chat websocket.

use std::net::TcpListener;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::chat::ws;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../static/index.html");
const ADMIN_HTML: &str = include_str!("../static/admin.html");
const CONSOLE_HTML: &str = include_str!("../static/console.html");
const INSIGHTS_HTML: &str = include_str!("../static/insights.html");
const WIDGET_JS: &str = include_str!("../static/widget.js");

/// Starts serving on `listener`. The returned server must be awaited or spawned.
/// `demo_shop`: the demo shop's side of the order contract, when this
/// server plays the shop too.
pub fn serve(
    state: Arc<AppState>,
    demo_shop: Option<Arc<crate::demo_shop::DemoShop>>,
    listener: TcpListener,
) -> std::io::Result<Server> {
    spawn_every(&state, Duration::from_secs(30), reap);
    // A day becomes whole at midnight and is kept once its conversations
    // are over: hourly is soon enough.
    spawn_every(
        &state,
        Duration::from_secs(3600),
        crate::insights::keep_past_days,
    );
    if let Some(days) = state.config.retention_days {
        spawn_every(&state, Duration::from_secs(3600), move |state| {
            retain(state, days)
        });
    }
    let max_upload = state.config.max_upload_bytes;
    let console = Arc::new(crate::console::feed::ConsoleHub::default());
    crate::console::feed::follow(&state, console.clone());
    crate::insights::gap_recorder::follow(&state);
    let console = web::Data::from(console);
    let data = web::Data::from(state);
    let demo_shop = demo_shop.map(web::Data::from);
    let server = HttpServer::new(move || {
        let demo_shop = demo_shop.clone();
        App::new()
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "strict-origin-when-cross-origin")),
            )
            .app_data(data.clone())
            .app_data(console.clone())
            .route("/", web::get().to(index))
            .route("/admin.html", web::get().to(admin_page))
            .route("/console.html", web::get().to(console_page))
            .route("/insights.html", web::get().to(insights_page))
            .route("/widget.js", web::get().to(widget))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .route("/kb/{id}", web::get().to(article_page))
            .route("/ws", web::get().to(ws::route))
            .configure(crate::console::routes)
            .configure(crate::insights::routes)
            .configure(|cfg| crate::admin::routes(cfg, max_upload))
            .configure(|cfg| {
                if let Some(shop) = demo_shop {
                    cfg.app_data(shop);
                    crate::demo_shop::routes(cfg);
                }
            })
    })
    .workers(2)
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Runs `job` at once and then every `period`; ends when the state is
/// dropped.
fn spawn_every<F, Fut>(state: &Arc<AppState>, period: Duration, job: F)
where
    F: Fn(Arc<AppState>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let state = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { return };
            job(state).await;
        }
    });
}

/// Evicts idle sessions from memory.
async fn reap(state: Arc<AppState>) {
    let idle = Duration::from_secs(state.config.session_idle_secs);
    state.limits.forget_idle();
    let reaped = state.hub.reap_idle(idle);
    if reaped > 0 {
        tracing::info!(reaped, live = state.hub.len(), "idle sessions left memory");
    }
}

/// Deletes conversations past the retention period.
async fn retain(state: Arc<AppState>, days: u32) {
    let cutoff = crate::storage::now_ms() - i64::from(days) * 86_400_000;
    match state.store.delete_older_than(cutoff).await {
        Ok(deleted) => {
            for id in &deleted {
                state.hub.forget(*id);
            }
            if !deleted.is_empty() {
                tracing::info!(
                    conversations = deleted.len(),
                    days,
                    "conversations past the retention period deleted"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "retention run failed"),
    }
}

// Each page's policy hashes its inline script: computed once, not per request.
static INDEX_POLICY: LazyLock<String> = LazyLock::new(|| page_policy(INDEX_HTML));
static ADMIN_POLICY: LazyLock<String> = LazyLock::new(|| page_policy(ADMIN_HTML));
static CONSOLE_POLICY: LazyLock<String> = LazyLock::new(|| page_policy(CONSOLE_HTML));
static INSIGHTS_POLICY: LazyLock<String> = LazyLock::new(|| page_policy(INSIGHTS_HTML));

async fn index(state: web::Data<AppState>) -> Result<HttpResponse, crate::api::ApiError> {
    if !state.config.demo_page {
        return Err(crate::api::ApiError::NotFound(
            "the demo shop is off (demo_page = false)".into(),
        ));
    }
    Ok(page(INDEX_HTML, &INDEX_POLICY))
}

async fn admin_page() -> HttpResponse {
    page(ADMIN_HTML, &ADMIN_POLICY)
}

async fn console_page() -> HttpResponse {
    page(CONSOLE_HTML, &CONSOLE_POLICY)
}

async fn insights_page() -> HttpResponse {
    page(INSIGHTS_HTML, &INSIGHTS_POLICY)
}

/// One of this server's pages, with a Content-Security-Policy that allows
/// only its own inline script (by hash) and scripts and connections of
/// this origin: an injected `<script>` or link to elsewhere does not run.
fn page(html: &'static str, policy: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", policy))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(html)
}

fn page_policy(html: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut scripts = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script>") {
        let body = &rest[start + "<script>".len()..];
        let Some(end) = body.find("</script>") else {
            break;
        };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        scripts.push_str(&format!(" 'sha256-{hash}'"));
        rest = &body[end..];
    }
    format!(
        "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The widget shops embed with one script tag, from any origin.
async fn widget() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(WIDGET_JS)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Prometheus metrics. A scraper on this machine needs nothing; from
/// elsewhere (or through a proxy with `behind_proxy`) it sends the admin
/// bearer token, so a public proxy does not publish them.
async fn metrics(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, crate::api::ApiError> {
    let local = state
        .limits
        .client_ip(&req)
        .is_some_and(|ip| ip.is_loopback());
    if !local {
        crate::admin::auth::authorize(&state, &req).await?;
    }
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(
            state
                .metrics
                .render(state.hub.len(), state.generator.in_flight()),
        ))
}

/// Ready once the model is loaded and the index is open, which the server
/// waits for before it listens; the body says what was loaded.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let corpus = state.kb.snapshot();
    HttpResponse::Ok().json(json!({
        "status": "ready",
        "model": state.generator.describe(),
        "articles": corpus.article_count(),
        "passages": corpus.passage_count(),
        "skipped_articles": state.skipped_articles,
        "intents": state.understanding.catalogue().intents.len(),
        "out_of_scope_threshold": state.understanding.intent_model().threshold(),
        "out_of_scope_min_similarity": state.understanding.intent_model().min_similarity(),
        "live_sessions": state.hub.len(),
    }))
}

async fn article_page(state: web::Data<AppState>, id: web::Path<String>) -> HttpResponse {
    let corpus = state.kb.snapshot();
    let Some(article) = corpus.article(id.as_str()) else {
        return HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .body("<!doctype html><title>Not found</title><p>There is no help article with that id.</p>");
    };
    let body = crate::knowledge::render_markdown(&article.body);
    let title = html_escape(&article.title);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>body{{font:16px/1.6 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#1f2937}}\
             h1{{font-size:1.6rem}}a{{color:#2563eb}}</style></head><body>\
             <p><a href=\"/\">← Back to chat</a></p><h1>{title}</h1>{body}</body></html>"
        ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
