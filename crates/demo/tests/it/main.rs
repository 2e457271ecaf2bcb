//! The demo crate's one integration-test binary: the story and `watch` on simulated time
//! (`story.rs`), and the persisted embedded world across separate "processes" (`persist.rs`).

mod persist;
mod story;
