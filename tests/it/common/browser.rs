//! A real headless Chromium, driven through a chromedriver child process (WebDriver).
//!
//! Each `Browser` owns its chromedriver on a free port and a fresh profile directory; dropping
//! it ends the WebDriver session (which quits Chromium) and kills chromedriver. A missing
//! chromedriver or Chromium fails the test with a clear message: these tests never skip.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long chromedriver may take to answer its first `/status`.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for an element that is expected to appear.
const FIND_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    session_id: Option<String>,
    _profile: tempfile::TempDir,
}

/// `$NAME` if set, else `default`; the file must exist.
fn executable(var: &str, default: &str, install_hint: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.is_file(),
        "{} not found (set ${var} to its path, or install it: {install_hint}); the browser tests need a real browser and do not skip",
        path.display()
    );
    path
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of `width` x `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromedriver = executable("CHROMEDRIVER", "/usr/bin/chromedriver", "apt-get install chromium-driver");
        let chromium = executable("CHROMIUM", "/usr/bin/chromium", "apt-get install chromium");
        let profile = tempfile::tempdir().expect("profile dir");
        let port = free_port();
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));

        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited at start-up with {status}");
            }
            let ready = reqwest::get(format!("{base}/status")).await.map(|r| r.status().is_success());
            if ready.unwrap_or(false) {
                break;
            }
            if started.elapsed() > DRIVER_START_TIMEOUT {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver did not answer on port {port} within {DRIVER_START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let capabilities = json!({
            "browserName": "chrome",
            // Keeps the console (and failed-request) messages for `console_log`.
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!("a JSON object") };
        let connected = ClientBuilder::native().capabilities(capabilities).connect(&base).await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver could not start {}: {e}", chromium.display());
            }
        };
        let session_id = client.session_id().await.ok().flatten();
        Browser { client, driver, port, session_id, _profile: profile }
    }

    /// The 1400 x 1000 window the dashboard tests use.
    pub async fn headless() -> Browser {
        Browser::start(1400, 1000).await
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The path and query of the current page, e.g. `/logs?project=demo&env=dev`.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The element matching a CSS selector, waiting a while for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(FIND_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element matches `{css}`: {e}"))
    }

    /// The visible text of an element.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_else(|e| panic!("text of `{css}`: {e}"))
    }

    /// The visible texts of every element matching `css`, in document order (none is fine).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let elements = self.client.find_all(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"));
        let mut texts = Vec::with_capacity(elements.len());
        for element in elements {
            texts.push(element.text().await.unwrap_or_else(|e| panic!("text of `{css}`: {e}")));
        }
        texts
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("cannot click `{css}`: {e}"));
    }

    /// Clicks something that leads to another page, and waits until the address has changed.
    pub async fn click_to_navigate(&self, css: &str) {
        let before = self.client.current_url().await.expect("current url");
        self.click(css).await;
        self.wait_to_leave(&before, &format!("clicking `{css}`")).await;
    }

    async fn wait_to_leave(&self, before: &url::Url, what: &str) {
        let started = Instant::now();
        while self.client.current_url().await.expect("current url") == *before {
            assert!(started.elapsed() < FIND_TIMEOUT, "{what} did not leave {before}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap_or_else(|e| panic!("cannot clear `{css}`: {e}"));
        input.send_keys(text).await.unwrap_or_else(|e| panic!("cannot type into `{css}`: {e}"));
    }

    /// Resizes the window so that the page itself (the viewport) is `width` x `height`.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .expect("viewport size");
        let size = |i: usize| inner[i].as_u64().expect("a size") as u32;
        let (outer_width, outer_height) = self.client.get_window_size().await.expect("window size");
        let (outer_width, outer_height) = (outer_width as u32, outer_height as u32);
        let (width, height) = (width + outer_width - size(0), height + outer_height - size(1));
        self.client.set_window_size(width, height).await.expect("resize the window");
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }

    /// The browser console's messages since the last call, across navigations: each
    /// `{"level": "SEVERE"|"WARNING"|"INFO"|..., "source": ..., "message": ...}` (chromedriver's log).
    pub async fn console_log(&self) -> Vec<Value> {
        let id = self.session_id.as_deref().expect("a WebDriver session");
        let url = format!("http://127.0.0.1:{}/session/{id}/se/log", self.port);
        let response = reqwest::Client::new().post(url).json(&json!({"type": "browser"})).send().await;
        let answer: Value = response.expect("ask chromedriver for the log").json().await.expect("a JSON log");
        answer["value"].as_array().cloned().unwrap_or_else(|| panic!("no browser log in {answer}"))
    }

    /// A Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`), e.g.
    /// `Emulation.setEmulatedMedia`; its answer.
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        let id = self.session_id.as_deref().expect("a WebDriver session");
        let url = format!("http://127.0.0.1:{}/session/{id}/goog/cdp/execute", self.port);
        let body = json!({"cmd": command, "params": params});
        let response = reqwest::Client::new().post(url).json(&body).send().await;
        let answer: Value = response.unwrap_or_else(|e| panic!("{command}: {e}")).json().await.expect("JSON");
        assert!(answer["value"].get("error").is_none(), "{command} failed: {answer}");
        answer["value"].clone()
    }

    /// Presses `keys` with the focus on the page's body, as a user who has clicked no field
    /// (WebDriver key codes such as `\u{e007}` for Enter work too).
    pub async fn press(&self, keys: &str) {
        let body = self.find("body").await;
        body.send_keys(keys).await.unwrap_or_else(|e| panic!("cannot press {keys:?}: {e}"));
    }

    /// [`Browser::press`] of a key that leads to another page: waits until the address has changed.
    pub async fn press_to_navigate(&self, keys: &str) {
        let before = self.client.current_url().await.expect("current url");
        self.press(keys).await;
        self.wait_to_leave(&before, &format!("pressing {keys:?}")).await;
    }

    /// The value of a JavaScript expression on the current page.
    pub async fn eval(&self, expression: &str) -> Value {
        let script = format!("return ({expression});");
        self.client.execute(&script, vec![]).await.unwrap_or_else(|e| panic!("`{expression}`: {e}"))
    }

    /// Opens `path` of the service at `base` through its login page, as the admin.
    pub async fn open_logged_in(&self, base: &str, path: &str) {
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        self.goto(&format!("{base}/login?next={next}")).await;
        self.log_in().await;
    }

    /// Logs in as the admin on the login page the browser is at.
    pub async fn log_in(&self) {
        self.fill("input[name=username]", "admin").await;
        self.fill("input[name=password]", super::ADMIN_PASSWORD).await;
        self.click_to_navigate("form button[type=submit]").await;
    }

    /// Ends the WebDriver session with a plain blocking request, so that it also works from
    /// `Drop` (no runtime needed) and Chromium does not outlive the test.
    fn end_session(&mut self) {
        let Some(id) = self.session_id.take() else { return };
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.end_session();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
