//! The README's walkthrough runs as written, in order, on a fresh root against the built-in
//! spec. Two adaptations keep it on port 0 (tests never take a fixed port): `serve … &` becomes
//! `serve --port 0`, and each `client` line is pointed at that server with `--url`.

mod support;

use support::*;

/// The lines of the ```sh block after `<!-- walkthrough -->`, comments stripped.
fn walkthrough() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let after = readme.split_once("<!-- walkthrough -->").expect("README has a walkthrough").1;
    let block = after.split_once("```sh\n").expect("a sh block").1.split_once("```").expect("closed").0;
    block
        .lines()
        .map(|line| match line.find("  #") {
            Some(i) => line[..i].trim_end().to_owned(),
            None => line.trim_end().to_owned(),
        })
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn the_walkthrough_runs_in_order() {
    let lines = walkthrough();
    assert!(lines.len() >= 10, "{lines:?}");
    let env = Env::new();
    let bin_dir = std::path::Path::new(BIN).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut server: Option<Server> = None;
    let mut outputs = Vec::new();
    for line in &lines {
        assert!(line.starts_with("mcpgen "), "every walkthrough line is an mcpgen command: {line}");
        if let Some(rest) = line.strip_suffix('&') {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(words[1], "serve", "{line}");
            server = Some(env.serve(words[2], &words[3..]));
            continue;
        }
        let mut command = line.clone();
        if line.starts_with("mcpgen client ") {
            let url = &server.as_ref().expect("serve comes before client").url;
            command.push_str(&format!(" --url {url}"));
        }
        let out = Cmd::program("bash", env.dir.path()).args(["-c", &command]).env("PATH", &path).env("MCPGEN_ROOT", env.root()).run();
        assert_eq!(out.code, 0, "{command}\n--- stdout:\n{}\n--- stderr:\n{}", out.stdout, out.stderr);
        assert_clean_stderr(&out.stderr);
        outputs.push((line.clone(), out));
    }
    let find = |needle: &str| &outputs.iter().find(|(l, _)| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle}")).1;
    // The stored token was read, not minted: it is the one the profile lists.
    let jwt = std::fs::read_to_string(env.dir.path().join("ci-bot.jwt")).unwrap();
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    assert!(find("sa-verify").stdout.contains("\"valid\": true"));
    assert!(find("ord-1002").stdout.contains("\"id\": \"ord-1002\""), "{}", find("ord-1002").stdout);
    assert!(find("--tool getOrders --json").json()["isError"] == false);
    assert!(find("--ignore-not-found").stderr.contains("nothing to revoke"));
}
