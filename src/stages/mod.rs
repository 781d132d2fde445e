//! The data path's stages, each a thin command over the episode runtime
//! ([`crate::episode`]), the MCAP logs (`raceloop-record`) and the learning core
//! (`raceloop-learn`): [`collect`] → [`extract`] → [`train`] → [`evaluate`], all four in
//! [`pipeline`]; what each logs to its tracked run ([`metrics`]); [`runs`] and lineage; and
//! [`drive`], the expert on one track.

pub mod collect;
pub mod drive;
pub mod evaluate;
pub mod extract;
pub mod metrics;
pub mod pipeline;
pub mod runs;
pub mod train;
