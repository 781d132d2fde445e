//! What runs one episode, and many in parallel: the simulation as ECS systems ([`plugin`]),
//! its MCAP recorder ([`recorder`]), the headless runner ([`runner`]), the drivers
//! ([`model_driver`]), the parallel job runner and track lists ([`jobs`]), and what an episode
//! yields ([`result`], [`summary`]).

pub mod jobs;
pub mod model_driver;
pub mod plugin;
pub mod recorder;
pub mod result;
pub mod runner;
pub mod summary;
