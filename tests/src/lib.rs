pub mod frames;
pub mod xenstored;
