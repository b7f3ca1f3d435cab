//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz
//! targets' property checks, which this file shares with the AFL++ targets (it
//! includes `fuzz/src/checks.rs`). The fuzzers themselves run only by hand
//! (`fuzz/run`, see fuzz/README.md): they are out of CI's time budget.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;

// Rules out: a committed seed or a past finding (a crash AFL++ found, kept in the
// corpus) failing its target's properties again.
#[test]
fn every_fuzz_corpus_file_passes_its_targets_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0;
    for (name, check) in checks::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds for target {name}");
        for f in &files {
            let data = std::fs::read(f).expect("a corpus file");
            let ok = std::panic::catch_unwind(|| check(&data));
            assert!(ok.is_ok(), "{name}: {} fails its checks", f.display());
        }
        total += files.len();
    }
    assert!(checks::target("head").is_some() && checks::target("nope").is_none());
    eprintln!(
        "{total} corpus files through {} targets",
        checks::TARGETS.len()
    );
}
