//! upsoak-chaos: the Wanderer and the Producer (built in their own issue).
pub mod apply;
pub mod constraint;
pub mod journal;
pub mod producer;
pub mod runner;
pub mod sidecar;
pub mod space;
