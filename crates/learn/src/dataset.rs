//! Datasets of (scan, command) pairs for behavioral cloning.
//!
//! A dataset version directory holds `data.safetensors` and `stats.json` ([`Stats`]). The
//! tensors are `train_scans` `[n_train, num_beams]` and `val_scans`: u16 ranges in units of
//! [`RANGE_UNIT`] (2⁻¹⁰ m), clipped to `range_clip`; `train_labels` / `val_labels` `[n, 2]`:
//! f32 steering angle in rad and speed in m/s; and `train_speeds` / `val_speeds` `[n, 1]`: f32
//! ego speed in m/s when the scan was taken (the input of a model with
//! `model.speed_input`). Scans stored as f32 m (datasets written before the u16 format) and
//! datasets without the speeds (written before them) load too.

use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{LearnError, Result};

/// Label columns: steering angle (rad), speed (m/s).
pub const LABELS: usize = 2;

/// The unit of the stored u16 ranges, m: 2⁻¹⁰ m, the LiDAR's default resolution, so that its
/// ranges are stored exactly; ranges up to 63.999 m fit.
pub const RANGE_UNIT: f32 = 1.0 / 1024.0;

/// The least standard deviation that [`Stats::normalize_speed_input`] divides by, m/s (a
/// fixed-speed dataset has none).
pub const MIN_SPEED_INPUT_STD: f32 = 0.1;

/// The largest `range_clip` that u16 ranges in [`RANGE_UNIT`] hold, m.
pub const MAX_RANGE_CLIP: f32 = u16::MAX as f32 * RANGE_UNIT;

/// Samples of one split, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// Ranges, m, `[n, num_beams]`.
    pub scans: Vec<f32>,
    /// Steering (rad) and speed (m/s), `[n, 2]`.
    pub labels: Vec<f32>,
    /// The ego's measured longitudinal speed when each scan was taken, m/s, `[n]`; empty in a
    /// dataset written before speeds were stored.
    pub speeds: Vec<f32>,
}

impl Split {
    /// Number of samples for scans of `num_beams`.
    pub fn len(&self, num_beams: usize) -> usize {
        self.scans.len() / num_beams
    }
}

/// Normalisation and label statistics of a dataset (`stats.json`), used identically at training
/// and inference: `x = (min(range, range_clip) − scan_mean) / scan_std`,
/// `steering_norm = steering / steering_scale`, `speed_norm = speed / speed_scale`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Beams per scan.
    pub num_beams: usize,
    /// Ranges are clipped to this before normalising, m.
    pub range_clip: f32,
    /// Mean of the clipped training ranges, m.
    pub scan_mean: f32,
    /// Standard deviation of the clipped training ranges, m.
    pub scan_std: f32,
    /// Steering normalisation (the vehicle's steering limit), rad.
    pub steering_scale: f32,
    /// Speed normalisation (the vehicle's top speed), m/s.
    pub speed_scale: f32,
    /// Mean and standard deviation of the training steering labels, rad.
    pub steering_mean_std: [f32; 2],
    /// Mean and standard deviation of the training speed labels, m/s.
    pub speed_mean_std: [f32; 2],
    /// Training samples.
    pub train_samples: usize,
    /// Validation samples.
    pub val_samples: usize,
}

impl Stats {
    /// Statistics of `train` (and counts of both splits).
    pub fn compute(
        train: &Split,
        val: &Split,
        num_beams: usize,
        range_clip: f32,
        steering_scale: f32,
        speed_scale: f32,
    ) -> Self {
        let mean_std = |it: &mut dyn Iterator<Item = f32>| {
            let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
            for v in it {
                n += 1.0;
                sum += v as f64;
                sq += (v as f64) * (v as f64);
            }
            let mean = sum / n.max(1.0);
            [
                mean as f32,
                ((sq / n.max(1.0) - mean * mean).max(0.0)).sqrt() as f32,
            ]
        };
        let [scan_mean, scan_std] = mean_std(&mut train.scans.iter().map(|r| r.min(range_clip)));
        Self {
            num_beams,
            range_clip,
            scan_mean,
            scan_std: scan_std.max(1e-6),
            steering_scale,
            speed_scale,
            steering_mean_std: mean_std(&mut train.labels.iter().step_by(2).copied()),
            speed_mean_std: mean_std(&mut train.labels.iter().skip(1).step_by(2).copied()),
            train_samples: train.len(num_beams),
            val_samples: val.len(num_beams),
        }
    }

    /// Normalises ranges (m) in place.
    pub fn normalize_scan(&self, ranges: &mut [f32]) {
        let inv = 1.0 / self.scan_std;
        for r in ranges {
            *r = (r.min(self.range_clip) - self.scan_mean) * inv;
        }
    }

    /// The reciprocal of the standard deviation that [`Self::normalize_speed_input`] divides
    /// by: the training speed labels' (the commanded speed, which the ego speed follows), at
    /// least [`MIN_SPEED_INPUT_STD`], 1/(m/s).
    pub fn inv_speed_input_std(&self) -> f32 {
        1.0 / self.speed_mean_std[1].max(MIN_SPEED_INPUT_STD)
    }

    /// The network input for the ego speed `speed` (m/s):
    /// `(speed − speed_mean) · inv_speed_input_std`, standardised with the training speed
    /// labels' mean and standard deviation.
    pub fn normalize_speed_input(&self, speed: f32) -> f32 {
        (speed - self.speed_mean_std[0]) * self.inv_speed_input_std()
    }

    /// Normalised labels `[steering, speed]` for the network's first `outputs` outputs.
    pub fn normalize_label(&self, steering: f32, speed: f32) -> [f32; 2] {
        [steering / self.steering_scale, speed / self.speed_scale]
    }

    /// Steering (rad) and speed (m/s) from network outputs in (-1, 1); with one output the speed
    /// is the training mean (the expert's fixed speed).
    pub fn denormalize(&self, outputs: &[f32]) -> (f32, f32) {
        let steering = outputs[0] * self.steering_scale;
        let speed = outputs
            .get(1)
            .map_or(self.speed_mean_std[0], |s| s * self.speed_scale);
        (steering, speed)
    }
}

/// A loaded dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Training split.
    pub train: Split,
    /// Validation split.
    pub val: Split,
    /// Statistics.
    pub stats: Stats,
}

fn f32_view<'a>(data: &'a [f32], rows: usize, cols: usize) -> Result<TensorView<'a>> {
    TensorView::new(Dtype::F32, vec![rows, cols], bytemuck::cast_slice(data))
        .map_err(|e| LearnError::Format(e.to_string()))
}

/// Ranges (m) as u16 multiples of [`RANGE_UNIT`], clipped to `clip` (m).
fn to_units(ranges: &[f32], clip: f32) -> Vec<u16> {
    ranges
        .iter()
        .map(|r| (r.clamp(0.0, clip) / RANGE_UNIT).round() as u16)
        .collect()
}

fn u16_view<'a>(data: &'a [u16], rows: usize, cols: usize) -> Result<TensorView<'a>> {
    TensorView::new(Dtype::U16, vec![rows, cols], bytemuck::cast_slice(data))
        .map_err(|e| LearnError::Format(e.to_string()))
}

impl Dataset {
    /// Writes `data.safetensors` and `stats.json` into `dir` (temporary names, then renamed).
    /// Ranges are stored clipped to `range_clip` and rounded to [`RANGE_UNIT`] (exact for a
    /// LiDAR of that resolution, else within half a unit).
    ///
    /// # Errors
    /// A `range_clip` above [`MAX_RANGE_CLIP`]; I/O errors naming the file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let (b, clip) = (self.stats.num_beams, self.stats.range_clip);
        if !(clip > 0.0 && clip <= MAX_RANGE_CLIP) {
            return Err(LearnError::Format(format!(
                "range_clip {clip} m: stored ranges hold (0, {MAX_RANGE_CLIP:.3}] m"
            )));
        }
        let (nt, nv) = (self.train.len(b), self.val.len(b));
        let (train_units, val_units) = (
            to_units(&self.train.scans, clip),
            to_units(&self.val.scans, clip),
        );
        let mut tensors = vec![
            ("train_scans", u16_view(&train_units, nt, b)?),
            ("train_labels", f32_view(&self.train.labels, nt, LABELS)?),
            ("val_scans", u16_view(&val_units, nv, b)?),
            ("val_labels", f32_view(&self.val.labels, nv, LABELS)?),
        ];
        let with_speeds = |split: &Split, n: usize| split.speeds.len() == n;
        if with_speeds(&self.train, nt) && with_speeds(&self.val, nv) {
            tensors.push(("train_speeds", f32_view(&self.train.speeds, nt, 1)?));
            tensors.push(("val_speeds", f32_view(&self.val.speeds, nv, 1)?));
        } else if !(self.train.speeds.is_empty() && self.val.speeds.is_empty()) {
            return Err(LearnError::Format(format!(
                "ego speeds for {} of {nt} training and {} of {nv} validation samples: a \
                 dataset has a speed for every sample or none",
                self.train.speeds.len(),
                self.val.speeds.len()
            )));
        }
        let bytes =
            safetensors::serialize(tensors, None).map_err(|e| LearnError::Format(e.to_string()))?;
        raceloop_files::write(&dir.join("data.safetensors"), &bytes)?;
        raceloop_files::write_json(&dir.join("stats.json"), &self.stats)?;
        Ok(())
    }

    /// Loads a dataset version directory.
    ///
    /// # Errors
    /// Missing or malformed files, named.
    pub fn load(dir: &Path) -> Result<Self> {
        let stats: Stats = raceloop_files::read_json(&dir.join("stats.json"))?;
        let path = dir.join("data.safetensors");
        let bytes = std::fs::read(&path).map_err(|e| LearnError::io(&path, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| LearnError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let get = |name: &str, cols: usize, ranges: bool| -> Result<Vec<f32>> {
            let t = st.tensor(name).map_err(|e| LearnError::File {
                path: path.clone(),
                message: format!("tensor `{name}`: {e}"),
            })?;
            let dtype_ok = t.dtype() == Dtype::F32 || (ranges && t.dtype() == Dtype::U16);
            if !dtype_ok || t.shape().len() != 2 || t.shape()[1] != cols {
                return Err(LearnError::File {
                    path: path.clone(),
                    message: format!(
                        "tensor `{name}` must be {} [n, {cols}], found {:?} {:?}",
                        if ranges { "u16 or f32" } else { "f32" },
                        t.dtype(),
                        t.shape()
                    ),
                });
            }
            Ok(if t.dtype() == Dtype::U16 {
                t.data()
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as f32 * RANGE_UNIT)
                    .collect()
            } else {
                t.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
        };
        let b = stats.num_beams;
        let has_speeds = st.names().iter().any(|n| n.ends_with("_speeds"));
        let split = |name: &str, samples: usize| -> Result<Split> {
            let split = Split {
                scans: get(&format!("{name}_scans"), b, true)?,
                labels: get(&format!("{name}_labels"), LABELS, false)?,
                speeds: if has_speeds {
                    get(&format!("{name}_speeds"), 1, false)?
                } else {
                    Vec::new()
                },
            };
            let (rows, labels) = (split.scans.len() / b.max(1), split.labels.len() / LABELS);
            let speeds = if has_speeds { split.speeds.len() } else { rows };
            if rows != labels || rows != samples || speeds != rows {
                return Err(LearnError::File {
                    path: path.clone(),
                    message: format!(
                        "{name}: {rows} scan rows, {labels} label rows, {speeds} speed rows, \
                         but stats.json says {samples} samples"
                    ),
                });
            }
            Ok(split)
        };
        Ok(Self {
            train: split("train", stats.train_samples)?,
            val: split("val", stats.val_samples)?,
            stats,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_and_label_rows_must_agree() {
        let dir = std::env::temp_dir().join(format!("raceloop-ds-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let train = Split {
            scans: vec![1.0, 2.0, 3.0, 4.0],
            labels: vec![0.1, 3.5, -0.2, 3.5],
            speeds: Vec::new(),
        };
        let stats = Stats::compute(&train, &Split::default(), 2, 30.0, 0.5, 7.0);
        Dataset {
            train: train.clone(),
            val: Split::default(),
            stats: stats.clone(),
        }
        .save(&dir)
        .unwrap();
        // The same file with one label row missing.
        let tensors = vec![
            ("train_scans", f32_view(&train.scans, 2, 2).unwrap()),
            (
                "train_labels",
                f32_view(&train.labels[..2], 1, LABELS).unwrap(),
            ),
            ("val_scans", f32_view(&[], 0, 2).unwrap()),
            ("val_labels", f32_view(&[], 0, LABELS).unwrap()),
        ];
        let bytes = safetensors::serialize(tensors, None).unwrap();
        std::fs::write(dir.join("data.safetensors"), bytes).unwrap();
        let e = Dataset::load(&dir).unwrap_err().to_string();
        assert!(
            e.contains("data.safetensors") && e.contains("train: 2 scan rows, 1 label rows"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn normalisation_round_trip_and_save_load() {
        let train = Split {
            scans: vec![1.0, 2.0, 40.0, 3.0, 1.0, 2.0],
            labels: vec![0.1, 3.5, -0.2, 3.5],
            speeds: vec![3.25, 4.5],
        };
        let val = Split {
            scans: vec![2.0, 2.0, 2.0],
            labels: vec![0.0, 3.5],
            speeds: vec![0.5],
        };
        let stats = Stats::compute(&train, &val, 3, 30.0, 0.4189, 20.0);
        assert_eq!((stats.train_samples, stats.val_samples), (2, 1));
        assert!((stats.scan_mean - (1.0 + 2.0 + 30.0 + 3.0 + 1.0 + 2.0) / 6.0).abs() < 1e-5);
        let mut x = vec![1.0, 2.0, 40.0];
        stats.normalize_scan(&mut x);
        assert!(
            (x[2] - (30.0 - stats.scan_mean) / stats.scan_std).abs() < 1e-5,
            "clipped to 30 m"
        );
        let n = stats.normalize_label(0.2, 3.5);
        let (s, v) = stats.denormalize(&n);
        assert!((s - 0.2).abs() < 1e-6 && (v - 3.5).abs() < 1e-6);
        assert_eq!(
            stats.denormalize(&n[..1]).1,
            3.5,
            "steering-only: the training mean speed"
        );
        let dir = std::env::temp_dir().join(format!("raceloop-ds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ds = Dataset { train, val, stats };
        ds.save(&dir).unwrap();
        let loaded = Dataset::load(&dir).unwrap();
        ds.train.scans[2] = 30.0; // stored clipped to range_clip
        assert_eq!(loaded, ds, "ranges on the 2⁻¹⁰ m grid come back exactly");
        // A dataset written with f32 scans (before the u16 format) loads as it was.
        let tensors = vec![
            ("train_scans", f32_view(&ds.train.scans, 2, 3).unwrap()),
            (
                "train_labels",
                f32_view(&ds.train.labels, 2, LABELS).unwrap(),
            ),
            ("val_scans", f32_view(&ds.val.scans, 1, 3).unwrap()),
            ("val_labels", f32_view(&ds.val.labels, 1, LABELS).unwrap()),
        ];
        std::fs::write(
            dir.join("data.safetensors"),
            safetensors::serialize(tensors, None).unwrap(),
        )
        .unwrap();
        let old = Dataset::load(&dir).unwrap();
        assert!(old.train.speeds.is_empty() && old.val.speeds.is_empty());
        assert_eq!(
            Dataset {
                train: Split {
                    speeds: ds.train.speeds.clone(),
                    ..old.train
                },
                val: Split {
                    speeds: ds.val.speeds.clone(),
                    ..old.val
                },
                ..old
            },
            ds,
            "a dataset without speeds loads, with none"
        );
        // Speeds for some samples only are refused.
        let partial = Dataset {
            val: Split {
                speeds: Vec::new(),
                ..ds.val.clone()
            },
            ..ds.clone()
        };
        let e = partial.save(&dir).unwrap_err().to_string();
        assert!(e.contains("every sample or none"), "{e}");
        // The speed input is standardised with the speed labels' statistics, the spread
        // floored for a fixed-speed dataset.
        let v = ds.stats.normalize_speed_input(5.0);
        assert_eq!(v, (5.0 - 3.5) / MIN_SPEED_INPUT_STD);
        // Off-grid ranges are stored within half a unit.
        let off = Dataset {
            train: Split {
                scans: vec![1.2345, 0.0001, 29.9999],
                labels: vec![0.0, 3.5],
                speeds: Vec::new(),
            },
            val: Split::default(),
            stats: Stats::compute(
                &Split {
                    scans: vec![1.2345, 0.0001, 29.9999],
                    labels: vec![0.0, 3.5],
                    speeds: Vec::new(),
                },
                &Split::default(),
                3,
                30.0,
                0.4189,
                20.0,
            ),
        };
        off.save(&dir).unwrap();
        let back = Dataset::load(&dir).unwrap();
        for (a, b) in back.train.scans.iter().zip(&off.train.scans) {
            assert!((a - b).abs() <= 0.5 * RANGE_UNIT, "{b} stored as {a}");
        }
        let too_far = Dataset {
            stats: Stats {
                range_clip: 100.0,
                ..off.stats.clone()
            },
            ..off
        };
        let e = too_far.save(&dir).unwrap_err().to_string();
        assert!(e.contains("range_clip 100"), "{e}");
        std::fs::write(dir.join("data.safetensors"), b"garbage").unwrap();
        let e = Dataset::load(&dir).unwrap_err().to_string();
        assert!(e.contains("data.safetensors"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
