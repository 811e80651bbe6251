pub mod demo;
pub mod frames;
pub mod r#gen;
pub mod kernel;
pub mod netns;
pub mod xenstored;
