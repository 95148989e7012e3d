//! `SftTokenizer::from_repo`: the tokenizer layout read through the `Repo` seam.

use sft_repo::{Repo, RepoError};
use sft_testkit::RecordingRepo;
use sft_tokenize::{SftTokenizer, SpecialTokenOverrides, TokenizeError};

use crate::fixture;

#[test]
fn fetches_only_the_tokenizer_files_and_names_a_missing_one() {
    // The fixture directory is a tokenizer repo with other files beside it (the reference JSON Lines, a README).
    let repo = RecordingRepo::new(fixture(""));
    let tokenizer = SftTokenizer::from_repo(&repo, &SpecialTokenOverrides::default()).unwrap();
    assert_eq!(repo.fetched(), ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]);
    // The same tokenizer as from the files directly.
    let text = "Summarise the clause.";
    assert_eq!(tokenizer.ids(text, true).unwrap(), crate::tokenizer().ids(text, true).unwrap());
    assert!(tokenizer.chat_template().is_some());

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("tokenizer_config.json"), dir.path().join("tokenizer_config.json")).unwrap();
    let repo = RecordingRepo::new(dir.path());
    let err = SftTokenizer::from_repo(&repo, &SpecialTokenOverrides::default()).unwrap_err();
    assert!(matches!(err, TokenizeError::Repo(RepoError::Missing { .. })), "{err:?}");
    assert_eq!(err.to_string(), format!("{}: no tokenizer.json; files found: tokenizer_config.json", repo.id()));
    assert!(repo.fetched().is_empty());
}
