//! `mcpgen demo`: the tour runs end to end in a temporary folder, and never replaces a real
//! profile in a root the user chose.

mod support;

use support::*;

#[test]
fn the_tour_runs_in_a_temporary_folder_and_shows_a_refusal() {
    let env = Env::new();
    let out = env.command().arg("demo").run();
    out.expect(0);
    assert!(out.stdout.contains("4. List tools as the primary token"), "{}", out.stdout);
    assert!(out.stdout.contains("refused as expected: HTTP 403 insufficient_scope"), "{}", out.stdout);
    assert!(!env.root().exists(), "the demo wrote into ./generated");
}

#[test]
fn the_demo_never_replaces_a_profile_under_a_chosen_root() {
    let env = Env::with_profile("demo");
    let before = snapshot(&env.profile_dir("demo"));
    let out = env.cmd(&["demo"]).env("MCPGEN_ROOT", env.root()).run();
    assert_refused(&out, 2, &["already exists", "--instance"]);
    assert_same_tree(&before, &snapshot(&env.profile_dir("demo")), "demo over an existing profile");
    // Under another name it runs there, and leaves the profile to look at.
    env.ok(&["demo", "--instance", "tour"]);
    assert!(env.profile_dir("tour").join("profile.json").is_file());
}
