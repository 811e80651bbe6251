
pub mod xenstored;
