//! Prints how far each shipped raceline strays from the centerline (|d| statistics, m).
use raceloop_sim::Track;
use raceloop_sim::track::shipped_names;

fn main() -> Result<(), raceloop_sim::SimError> {
    for name in shipped_names() {
        let t = Track::load(name)?;
        let Some(r) = &t.raceline else { continue };
        let d: Vec<f64> = r
            .path
            .points()
            .iter()
            .map(|&p| t.centerline.project(p).d.abs())
            .collect();
        let max = d.iter().cloned().fold(0.0, f64::max);
        let over = d.iter().filter(|&&x| x > 0.75).count() as f64 / d.len() as f64;
        println!(
            "{name:14} max |d| {max:.3} m, {:.1} % of points beyond 0.75 m",
            over * 100.0
        );
    }
    Ok(())
}
