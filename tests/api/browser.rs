//! Pages in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`; `scripts/test` installs them).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;

use crate::admin::{TOKEN, spawn_admin_app};
use crate::helpers::repo_path;

const WAIT: Duration = Duration::from_secs(20);

/// A headless Chromium session; the driver stops with it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    pub async fn start() -> Browser {
        // Two TLS backends are linked in; WebDriver runs over plain HTTP,
        // but the client still wants one chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromedriver: install Debian's chromium and chromium-driver (scripts/test does)");
        let profile = TempDir::new().unwrap();
        // Flags as a locked-down machine needs them: no sandbox as root, no
        // GPU, and no background connections to hosts it cannot reach.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::rustls()
                .unwrap()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() > WAIT => panic!("chromedriver did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Waits until the element's text satisfies `ok`, and returns it.
    pub async fn text_where(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if ok(&text) {
                return text;
            }
            assert!(
                started.elapsed() < WAIT,
                "{css} never got the expected text; last: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot under target/screenshots for people to look at.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = repo_path("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

#[tokio::test]
async fn the_admin_page_creates_an_article_and_finds_it_with_try_a_question() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let browser = Browser::start().await;
    browser.client.goto(&app.url("/admin.html")).await.unwrap();

    browser.type_into("#token", TOKEN).await;
    browser.type_into("#user", "Ana").await;
    browser.click("#signin-button").await;
    browser.find("#list li[data-id]").await;

    browser.click("#new-article").await;
    browser.type_into("#title", "Gift wrapping").await;
    browser.type_into("#tags", "gift-wrap, checkout").await;
    browser
        .type_into(
            "#body",
            "We gift wrap any order for 3 euros.\n\n## How to ask for it\nChoose gift wrapping at checkout and add a card with your message.",
        )
        .await;
    // The preview renders the Markdown as the article page will.
    browser
        .text_where("#preview h2", |t| t == "How to ask for it")
        .await;
    browser.click("#save").await;
    browser
        .text_where("#status", |t| t.starts_with("Saved"))
        .await;
    browser.type_into("#search", "gift wrap").await;
    browser
        .text_where("#list", |t| t.contains("Gift wrapping") && t.contains("v1"))
        .await;
    browser.screenshot("admin-article.png").await;

    browser.click("button[data-tab=try]").await;
    browser
        .type_into("#try-input", "How much does gift wrapping cost?")
        .await;
    browser.click("#try-button").await;
    let result = browser
        .text_where("#try-result", |t| t.contains("answer"))
        .await;
    assert!(result.contains("Would answer"), "{result}");
    assert!(result.contains("3 euros"), "{result}");
    assert!(result.contains("Source: Gift wrapping"), "{result}");
    browser.screenshot("admin-try.png").await;

    // The history shows who made the article.
    browser.click("button[data-tab=history]").await;
    browser
        .text_where("#versions", |t| t.contains("created") && t.contains("Ana"))
        .await;
}
