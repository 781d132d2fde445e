//! The single-track (bicycle) vehicle model of f1tenth_gym, integrated with RK4.
//!
//! Source: f1tenth_gym `dynamic_models.py` (`vehicle_dynamics_st`, `accl_constraints`,
//! `steering_constraint`, `pid`) and `base_classes.py` (`RaceCar`: 2-step steering delay),
//! which follow the CommonRoad vehicle models (Althoff et al., "CommonRoad: Vehicle Models", 2020).
//!
//! One deliberate difference: f1tenth_gym switches to the kinematic model for `|v| < 0.5 m/s` and
//! uses the dynamic model when reversing faster, where its `1/v` tire terms become unstable
//! (exploding yaw rates at full steering lock). Here the kinematic model (CommonRoad's
//! kinematic single-track model at the centre of gravity) is used for every `v < kinematic_below`,
//! reversing included, and it sets yaw rate and slip angle to their kinematic values, so that
//! the switch back to the dynamic model is continuous.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SimError};

/// Gravitational acceleration, m/s².
pub const G: f64 = 9.81;

/// Vehicle parameters (`configs/vehicle.ron`), named as in f1tenth_gym. Defaults: the F1TENTH car.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct VehicleParams {
    /// Tire–road friction coefficient.
    pub mu: f64,
    /// Front cornering stiffness coefficient, 1/rad.
    pub C_Sf: f64,
    /// Rear cornering stiffness coefficient, 1/rad.
    pub C_Sr: f64,
    /// Distance from the centre of gravity to the front axle, m.
    pub lf: f64,
    /// Distance from the centre of gravity to the rear axle, m.
    pub lr: f64,
    /// Height of the centre of gravity, m.
    pub h: f64,
    /// Mass, kg.
    pub m: f64,
    /// Moment of inertia about the vertical axis, kg·m².
    pub I: f64,
    /// Minimum steering angle, rad.
    pub s_min: f64,
    /// Maximum steering angle, rad.
    pub s_max: f64,
    /// Minimum steering rate, rad/s.
    pub sv_min: f64,
    /// Maximum steering rate, rad/s.
    pub sv_max: f64,
    /// Speed above which the positive acceleration limit falls as `a_max·v_switch/v`, m/s.
    pub v_switch: f64,
    /// Maximum longitudinal acceleration, m/s².
    pub a_max: f64,
    /// Minimum speed (reverse), m/s.
    pub v_min: f64,
    /// Maximum speed, m/s.
    pub v_max: f64,
    /// Body width, m (footprint for collisions).
    pub width: f64,
    /// Body length, m (footprint for collisions).
    pub length: f64,
    /// Steering command delay in physics steps (f1tenth_gym: 2).
    pub steering_delay_steps: usize,
    /// Below this speed the kinematic model is used, m/s (f1tenth_gym: 0.5).
    pub kinematic_below: f64,
}

impl VehicleParams {
    /// Wheelbase `lf + lr`, m.
    pub fn wheelbase(&self) -> f64 {
        self.lf + self.lr
    }

    /// Checks ranges of values.
    ///
    /// # Errors
    /// [`SimError::ConfigValue`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("mu", self.mu),
            ("C_Sf", self.C_Sf),
            ("C_Sr", self.C_Sr),
            ("lf", self.lf),
            ("lr", self.lr),
            ("m", self.m),
            ("I", self.I),
            ("sv_max", self.sv_max),
            ("v_switch", self.v_switch),
            ("a_max", self.a_max),
            ("v_max", self.v_max),
            ("width", self.width),
            ("length", self.length),
            ("kinematic_below", self.kinematic_below),
        ];
        for (field, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(SimError::ConfigValue {
                    field: format!("vehicle.{field}"),
                    message: format!("must be a positive number, found {v}"),
                });
            }
        }
        let ordered = [
            ("s_min", self.s_min, "s_max", self.s_max),
            ("sv_min", self.sv_min, "sv_max", self.sv_max),
            ("v_min", self.v_min, "v_max", self.v_max),
        ];
        for (lo_name, lo, hi_name, hi) in ordered {
            if !(lo.is_finite() && lo < hi) {
                return Err(SimError::ConfigValue {
                    field: format!("vehicle.{lo_name}"),
                    message: format!("must be finite and below {hi_name} ({hi}), found {lo}"),
                });
            }
        }
        if !(self.h >= 0.0 && self.h.is_finite()) {
            return Err(SimError::ConfigValue {
                field: "vehicle.h".into(),
                message: format!("must be ≥ 0, found {}", self.h),
            });
        }
        Ok(())
    }
}

/// The state of f1tenth_gym's single-track model (same order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VehicleState {
    /// x of the centre of gravity in the world frame, m.
    pub x: f64,
    /// y of the centre of gravity in the world frame, m.
    pub y: f64,
    /// Front-wheel steering angle, rad (positive = left).
    pub steering: f64,
    /// Longitudinal speed, m/s.
    pub v: f64,
    /// Heading (yaw), rad, counter-clockwise from +x, wrapped to `(-pi, pi]`.
    pub yaw: f64,
    /// Yaw rate, rad/s.
    pub yaw_rate: f64,
    /// Slip angle at the centre of gravity, rad.
    pub slip: f64,
}

impl VehicleState {
    /// Position of the centre of gravity, m.
    pub fn position(&self) -> glam::DVec2 {
        glam::DVec2::new(self.x, self.y)
    }

    fn to_array(self) -> [f64; 7] {
        [
            self.x,
            self.y,
            self.steering,
            self.v,
            self.yaw,
            self.yaw_rate,
            self.slip,
        ]
    }

    fn from_array(a: [f64; 7]) -> Self {
        Self {
            x: a[0],
            y: a[1],
            steering: a[2],
            v: a[3],
            yaw: a[4],
            yaw_rate: a[5],
            slip: a[6],
        }
    }

    /// The kinematic slip angle and yaw rate for this steering angle and speed.
    fn kinematic_slip_and_yaw_rate(&self, p: &VehicleParams) -> (f64, f64) {
        let slip = (self.steering.tan() * p.lr / p.wheelbase()).atan();
        (
            slip,
            self.v * slip.cos() * self.steering.tan() / p.wheelbase(),
        )
    }
}

/// A driving command: target steering angle (rad) and target speed (m/s).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Target front-wheel steering angle, rad (positive = left).
    pub steering: f64,
    /// Target longitudinal speed, m/s.
    pub speed: f64,
}

/// f1tenth_gym's `steering_constraint`: the steering rate limited by the rate and angle limits, rad/s.
pub fn steering_constraint(steering: f64, rate: f64, p: &VehicleParams) -> f64 {
    if (steering <= p.s_min && rate <= 0.0) || (steering >= p.s_max && rate >= 0.0) {
        0.0
    } else {
        rate.clamp(p.sv_min, p.sv_max)
    }
}

/// f1tenth_gym's `accl_constraints`: acceleration limited by speed limits and engine power, m/s².
pub fn accel_constraint(v: f64, accel: f64, p: &VehicleParams) -> f64 {
    let pos_limit = if v > p.v_switch {
        p.a_max * p.v_switch / v
    } else {
        p.a_max
    };
    if (v <= p.v_min && accel <= 0.0) || (v >= p.v_max && accel >= 0.0) {
        0.0
    } else {
        accel.clamp(-p.a_max, pos_limit)
    }
}

/// f1tenth_gym's `pid`: steering rate (rad/s, bang-bang) and acceleration (m/s², proportional)
/// that drive the state towards a (delayed) steering target and a speed target.
pub fn pid(
    target_steering: f64,
    target_speed: f64,
    state: &VehicleState,
    p: &VehicleParams,
) -> (f64, f64) {
    let steer_diff = target_steering - state.steering;
    let sv = if steer_diff.abs() > 1e-4 {
        steer_diff.signum() * p.sv_max
    } else {
        0.0
    };
    let vel_diff = target_speed - state.v;
    let kp = match (state.v > 0.0, vel_diff > 0.0) {
        (true, true) => 10.0 * p.a_max / p.v_max,
        (true, false) => 10.0 * p.a_max / -p.v_min,
        (false, true) => 2.0 * p.a_max / p.v_max,
        (false, false) => 2.0 * p.a_max / -p.v_min,
    };
    (sv, kp * vel_diff)
}

/// Time derivative of the state for steering rate `sv` (rad/s) and acceleration `accel` (m/s²),
/// after the constraints. The dynamic single-track model for `v ≥ kinematic_below`, the kinematic
/// one below.
pub fn derivatives(s: &VehicleState, sv: f64, accel: f64, p: &VehicleParams) -> [f64; 7] {
    let sv = steering_constraint(s.steering, sv, p);
    let a = accel_constraint(s.v, accel, p);
    let lwb = p.wheelbase();
    if s.v < p.kinematic_below {
        let (slip, yaw_rate) = s.kinematic_slip_and_yaw_rate(p);
        return [
            s.v * (s.yaw + slip).cos(),
            s.v * (s.yaw + slip).sin(),
            sv,
            a,
            yaw_rate,
            0.0,
            0.0,
        ];
    }
    let (mu, m, i, lf, lr, h) = (p.mu, p.m, p.I, p.lf, p.lr, p.h);
    let front = p.C_Sf * (G * lr - a * h);
    let rear = p.C_Sr * (G * lf + a * h);
    let yaw_acc = -mu * m / (s.v * i * lwb) * (lf * lf * front + lr * lr * rear) * s.yaw_rate
        + mu * m / (i * lwb) * (lr * rear - lf * front) * s.slip
        + mu * m / (i * lwb) * lf * front * s.steering;
    let slip_rate = (mu / (s.v * s.v * lwb) * (rear * lr - front * lf) - 1.0) * s.yaw_rate
        - mu / (s.v * lwb) * (rear + front) * s.slip
        + mu / (s.v * lwb) * front * s.steering;
    [
        s.v * (s.slip + s.yaw).cos(),
        s.v * (s.slip + s.yaw).sin(),
        sv,
        a,
        s.yaw_rate,
        yaw_acc,
        slip_rate,
    ]
}

/// One classic fourth-order Runge–Kutta step of `dt` seconds with inputs held constant.
pub fn rk4_step(s: &VehicleState, sv: f64, accel: f64, p: &VehicleParams, dt: f64) -> VehicleState {
    let x = s.to_array();
    let at = |k: &[f64; 7], h: f64| {
        let mut y = x;
        for j in 0..7 {
            y[j] += h * k[j];
        }
        VehicleState::from_array(y)
    };
    let k1 = derivatives(s, sv, accel, p);
    let k2 = derivatives(&at(&k1, 0.5 * dt), sv, accel, p);
    let k3 = derivatives(&at(&k2, 0.5 * dt), sv, accel, p);
    let k4 = derivatives(&at(&k3, dt), sv, accel, p);
    let mut y = x;
    for j in 0..7 {
        y[j] += dt / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
    }
    let mut next = VehicleState::from_array(y);
    next.yaw = wrap_angle(next.yaw);
    if next.v < p.kinematic_below {
        (next.slip, next.yaw_rate) = next.kinematic_slip_and_yaw_rate(p);
    }
    next
}

/// Wraps an angle to `(-pi, pi]`, rad.
pub fn wrap_angle(a: f64) -> f64 {
    let w = (a + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
    if w == -std::f64::consts::PI {
        std::f64::consts::PI
    } else {
        w
    }
}

/// A car: parameters, state and the steering delay line between command and actuator.
#[derive(Clone, Debug)]
pub struct Vehicle {
    params: VehicleParams,
    state: VehicleState,
    steer_buffer: VecDeque<f64>,
}

impl Vehicle {
    /// A car at `state` with an empty steering delay line (f1tenth_gym holds steering at 0 until it fills).
    pub fn new(params: VehicleParams, state: VehicleState) -> Self {
        Self {
            steer_buffer: VecDeque::with_capacity(params.steering_delay_steps + 1),
            params,
            state,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &VehicleParams {
        &self.params
    }

    /// The current state.
    pub fn state(&self) -> &VehicleState {
        &self.state
    }

    /// Advances by `dt` seconds under `action`: steering delay, [`pid`], constraints, [`rk4_step`].
    /// The action's steering is first clamped to `[s_min, s_max]` and its speed to `[v_min, v_max]`.
    pub fn step(&mut self, action: Action, dt: f64) {
        let p = &self.params;
        let target_steer = action.steering.clamp(p.s_min, p.s_max);
        let target_speed = action.speed.clamp(p.v_min, p.v_max);
        self.steer_buffer.push_back(target_steer);
        let delayed = if self.steer_buffer.len() > p.steering_delay_steps {
            self.steer_buffer.pop_front().unwrap_or(0.0)
        } else {
            0.0
        };
        let (sv, accel) = pid(delayed, target_speed, &self.state, p);
        self.state = rk4_step(&self.state, sv, accel, p, dt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f1tenth() -> VehicleParams {
        crate::config::SimConfig::default().vehicle
    }

    #[test]
    fn dynamic_derivatives_match_hand_computed_values() {
        let p = f1tenth();
        let s = VehicleState {
            x: 0.0,
            y: 0.0,
            steering: 0.1,
            v: 2.0,
            yaw: 0.3,
            yaw_rate: 0.5,
            slip: 0.02,
        };
        let d = derivatives(&s, 0.0, 0.0, &p);
        // By hand with a = 0: front = C_Sf·g·lr = 4.718·9.81·0.17145 = 7.93535,
        // rear = C_Sr·g·lf = 5.4562·9.81·0.15875 = 8.49712, lwb = 0.3302.
        let (front, rear, lwb) = (4.718 * 9.81 * 0.17145, 5.4562 * 9.81 * 0.15875, 0.3302);
        let k = 1.0489 * 3.74 / (0.04712 * lwb);
        let yaw_acc = -k / 2.0 * (0.15875f64.powi(2) * front + 0.17145f64.powi(2) * rear) * 0.5
            + k * (0.17145 * rear - 0.15875 * front) * 0.02
            + k * 0.15875 * front * 0.1;
        let slip_rate = (1.0489 / (4.0 * lwb) * (rear * 0.17145 - front * 0.15875) - 1.0) * 0.5
            - 1.0489 / (2.0 * lwb) * (rear + front) * 0.02
            + 1.0489 / (2.0 * lwb) * front * 0.1;
        assert!((d[0] - 2.0 * 0.32f64.cos()).abs() < 1e-12);
        assert!((d[1] - 2.0 * 0.32f64.sin()).abs() < 1e-12);
        assert!((d[4] - 0.5).abs() < 1e-12);
        assert!((d[5] - yaw_acc).abs() < 1e-9, "{} vs {yaw_acc}", d[5]);
        assert!((d[6] - slip_rate).abs() < 1e-9, "{} vs {slip_rate}", d[6]);
        // The same numbers evaluated independently in Python: 4.406223333647, 0.316627660326.
        assert!((d[5] - 4.406_223_333_647).abs() < 1e-9 && (d[6] - 0.316_627_660_326).abs() < 1e-9);
    }

    #[test]
    fn kinematic_model_below_the_switch() {
        let p = f1tenth();
        let s = VehicleState {
            v: 0.3,
            steering: 0.2,
            ..Default::default()
        };
        let d = derivatives(&s, 0.0, 1.0, &p);
        let slip = (0.2f64.tan() * 0.17145 / 0.3302).atan();
        assert!((d[0] - 0.3 * slip.cos()).abs() < 1e-12);
        assert!((d[4] - 0.3 * slip.cos() * 0.2f64.tan() / 0.3302).abs() < 1e-12);
        assert_eq!(d[3], 1.0);
    }

    #[test]
    fn limits_of_steering_rate_and_acceleration() {
        let p = f1tenth();
        assert_eq!(steering_constraint(0.0, 10.0, &p), 3.2);
        assert_eq!(steering_constraint(p.s_max, 1.0, &p), 0.0);
        assert_eq!(steering_constraint(p.s_max, -1.0, &p), -1.0);
        assert_eq!(accel_constraint(1.0, 100.0, &p), 9.51);
        assert!((accel_constraint(10.0, 100.0, &p) - 9.51 * 7.319 / 10.0).abs() < 1e-12);
        assert_eq!(accel_constraint(20.0, 1.0, &p), 0.0);
        assert_eq!(accel_constraint(0.0, -100.0, &p), -9.51);
        let (sv, a) = pid(
            0.3,
            2.0,
            &VehicleState {
                v: 1.0,
                ..Default::default()
            },
            &p,
        );
        assert_eq!(sv, 3.2);
        assert!((a - 10.0 * 9.51 / 20.0).abs() < 1e-12);
    }

    #[test]
    fn steering_is_delayed_two_steps_and_rate_limited() {
        let p = f1tenth();
        let mut car = Vehicle::new(p, VehicleState::default());
        car.step(
            Action {
                steering: 0.4,
                speed: 0.0,
            },
            0.01,
        );
        car.step(
            Action {
                steering: 0.4,
                speed: 0.0,
            },
            0.01,
        );
        assert_eq!(car.state().steering, 0.0);
        car.step(
            Action {
                steering: 0.4,
                speed: 0.0,
            },
            0.01,
        );
        assert!(
            (car.state().steering - 0.032).abs() < 1e-9,
            "{}",
            car.state().steering
        );
    }

    #[test]
    fn reversing_at_full_lock_stays_finite_and_bounded() {
        let p = f1tenth();
        let mut car = Vehicle::new(
            p.clone(),
            VehicleState {
                v: 3.0,
                ..Default::default()
            },
        );
        for _ in 0..3000 {
            car.step(
                Action {
                    steering: p.s_max,
                    speed: p.v_min,
                },
                0.01,
            );
        }
        let s = car.state();
        assert!(s.v < -4.9, "reverses at v_min: {}", s.v);
        let kin = s.v * (s.steering.tan() * p.lr / p.wheelbase()).atan().cos() * s.steering.tan()
            / p.wheelbase();
        assert!(
            (s.yaw_rate - kin).abs() < 1e-9 && s.yaw_rate.abs() < 10.0,
            "yaw rate {}",
            s.yaw_rate
        );
        assert!(
            s.x.is_finite() && s.y.is_finite() && s.x.hypot(s.y) < 2.0,
            "circles in place: {s:?}"
        );
    }

    #[test]
    fn straight_acceleration_reaches_the_target_speed() {
        let p = f1tenth();
        let mut car = Vehicle::new(p, VehicleState::default());
        for _ in 0..300 {
            car.step(
                Action {
                    steering: 0.0,
                    speed: 5.0,
                },
                0.01,
            );
        }
        assert!((car.state().v - 5.0).abs() < 1e-3);
        assert!(car.state().y.abs() < 1e-12 && car.state().yaw == 0.0);
    }
}
