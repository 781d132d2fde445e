//! A trained model as the car's driver.

use raceloop_learn::Policy;
use raceloop_sim::Action;

use super::plugin::ScanPolicy;

/// Drives with a loaded model directory: steering (and speed, for 2-output models) from each scan.
pub struct ModelDriver(pub Policy);

impl ScanPolicy for ModelDriver {
    fn act(&mut self, ranges: &[f32]) -> Action {
        let (steering, speed) = self.0.act(ranges);
        Action {
            steering: steering as f64,
            speed: speed as f64,
        }
    }
}
