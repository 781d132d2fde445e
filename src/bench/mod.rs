//! `raceloop bench …`: benchmarks that print figures, grouped by the layer they measure:
//! [`sim`] (the simulation core), [`collect`] (the episode runtime) and [`learn`] (training
//! and inference).

pub mod collect;
pub mod learn;
pub mod sim;
