//! The web app in a real browser: the local stack started for this test binary, the app it
//! serves opened in Debian's Chromium by playwright-core (local/browser/pages.test.mjs, one test
//! per page). `make test` installs both (`make browser-deps`); screenshots of every page go to
//! target/browser/screenshots/.

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use support::Local;

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Two real photos of different formats and sizes, and a text file named like a JPEG.
fn write_fixtures(dir: &Path) {
    std::fs::create_dir_all(dir).expect("fixtures folder");
    std::fs::write(dir.join("photo-1.jpg"), support::photo()).expect("photo");
    let png = image::RgbaImage::from_fn(900, 600, |x, y| {
        image::Rgba([(x % 256) as u8, 90, (y % 256) as u8, 255])
    });
    png.save_with_format(dir.join("photo-2.png"), image::ImageFormat::Png)
        .expect("png");
    std::fs::write(
        dir.join("not-a-photo.jpg"),
        "Shopping list: eggs, milk, coffee.\n",
    )
    .expect("text");
}

#[test]
fn every_page_works_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = root.join("browser");
    assert!(
        chromium().exists(),
        "{} is missing: run `make browser-deps` (installs Debian's chromium)",
        chromium().display()
    );
    assert!(
        tests.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `make browser-deps` (npm ci in local/browser)"
    );
    let local = Local::start("web", &[]);
    if local.skip_on_aws("the pages' tests create approvals that e-mail a made-up manager") {
        return;
    }
    // Ann signs in to every page; the chat's people speak under their own names.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let person = runtime.block_on(local.person("Ann Lee"));
    let mut people = serde_json::Map::new();
    for name in ["김민수", "Zoë 🎉"] {
        let other = runtime.block_on(local.person(name));
        people.insert(
            name.into(),
            serde_json::json!({"email": other.email, "password": other.password}),
        );
    }
    let output = root.parent().expect("workspace").join("target/browser");
    let fixtures = output.join("fixtures");
    write_fixtures(&fixtures);
    let run = Command::new("node")
        .args(["--test", "--test-concurrency=1", "pages.test.mjs"])
        .current_dir(&tests)
        .env("WEB_URL", &local.web)
        .env("API_URL", &local.url)
        .env("API_KEY", &local.api_key)
        .env("PERSON_EMAIL", &person.email)
        .env("PERSON_PASSWORD", &person.password)
        .env("PERSON_NAME", &person.name)
        .env("ID_TOKEN", &person.id_token)
        .env("PEOPLE", serde_json::Value::Object(people).to_string())
        .env(
            "COGNITO_ENDPOINT",
            std::env::var("AWS_ENDPOINT_URL").expect("the gate"),
        )
        .env("FIXTURES", &fixtures)
        .env("SCREENSHOTS", output.join("screenshots"))
        .env("CHROMIUM", chromium())
        .output()
        .expect("node runs (Node.js 20 is a README prerequisite)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{report}");
    assert!(
        run.status.success(),
        "browser tests failed:\n{report}\nlocal stack log:\n{}",
        local.log_tail()
    );
}
