//! The LiDAR and the footprint test against exact f64 references on every shipped track, at
//! sampled poses: every checked beam within 1 mm of a brute-force ray cast over all wall
//! segments (and over the obstacles, where there are some), and the footprint's wall contact
//! equal to an exact rectangle–segment test.

use glam::DVec2;
use raceloop_sim::track::{Segment, shipped_names};
use raceloop_sim::{Lidar, SimConfig, Track, car_half};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Whether segments `[a, b]` and `[c, d]` intersect (proper or touching).
fn segments_intersect(a: DVec2, b: DVec2, c: DVec2, d: DVec2) -> bool {
    let side = |p: DVec2, q: DVec2, r: DVec2| (q - p).perp_dot(r - p);
    let (d1, d2) = (side(c, d, a), side(c, d, b));
    let (d3, d4) = (side(a, b, c), side(a, b, d));
    d1 * d2 <= 0.0 && d3 * d4 <= 0.0
}

/// Exact contact of the rectangle (centre, yaw, half extents) with any segment: an endpoint
/// inside the rectangle, or a crossing of one of its four edges.
fn rectangle_touches(segments: &[Segment], center: DVec2, yaw: f64, half: DVec2) -> bool {
    let (fwd, left) = (DVec2::from_angle(yaw), DVec2::from_angle(yaw).perp());
    let corner = |sx: f64, sy: f64| center + fwd * (sx * half.x) + left * (sy * half.y);
    let corners = [
        corner(1.0, 1.0),
        corner(-1.0, 1.0),
        corner(-1.0, -1.0),
        corner(1.0, -1.0),
    ];
    let inside = |p: DVec2| {
        let q = p - center;
        q.dot(fwd).abs() <= half.x && q.dot(left).abs() <= half.y
    };
    segments.iter().any(|s| {
        inside(s.a)
            || inside(s.b)
            || (0..4).any(|i| segments_intersect(s.a, s.b, corners[i], corners[(i + 1) % 4]))
    })
}

#[test]
fn lidar_ranges_are_within_a_millimetre_of_a_brute_force_cast_on_every_track() {
    let config = SimConfig::default();
    let lidar = Lidar::new(config.lidar.clone());
    let max_range = config.lidar.max_range;
    let mut ranges = vec![0f32; config.lidar.num_beams];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(15);
    let (mut checked, mut worst) = (0usize, 0f64);
    for name in shipped_names() {
        let track = Track::load(name).unwrap();
        let segments = track.grid.segments();
        let c = &track.centerline;
        for k in 0..12 {
            let s = c.length() * (k as f64 + rng.random::<f64>()) / 12.0;
            let (wr, wl) = track.widths_at(s);
            let d = rng.random_range(-0.8 * wr..0.8 * wl);
            let heading = c.heading_at(s);
            let p = c.point_at(s) + DVec2::from_angle(heading).perp() * d;
            if !track.grid.contains(p) {
                continue;
            }
            let yaw = heading + rng.random_range(-0.6..0.6);
            lidar.scan_exact(&track.grid, &[], p, yaw, &mut ranges);
            for i in (0..ranges.len()).step_by(3) {
                let dir = DVec2::from_angle(yaw + config.lidar.beam_angle(i));
                let exact = raceloop_sim::lidar::brute_force_range(segments, p, dir).min(max_range);
                let err = (ranges[i] as f64 - exact).abs();
                assert!(
                    err <= 1e-3,
                    "{name}: beam {i} at ({:.3}, {:.3}) yaw {yaw:.4}: {} m against {exact} m",
                    p.x,
                    p.y,
                    ranges[i]
                );
                worst = worst.max(err);
                checked += 1;
            }
        }
    }
    println!("{checked} beams checked on 15 tracks, largest error {worst:.2e} m");
    assert!(checked > 15 * 10 * 300, "too few beams checked: {checked}");
}

#[test]
fn lidar_sees_obstacles_within_a_millimetre_of_a_brute_force_cast_on_every_track() {
    let mut config = SimConfig::default();
    config.scenario.obstacles.density = 4.0;
    config.scenario.obstacles.min_spacing = 6.0;
    let lidar = Lidar::new(config.lidar.clone());
    let max_range = config.lidar.max_range;
    let mut ranges = vec![0f32; config.lidar.num_beams];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    let (mut checked, mut on_obstacles, mut worst) = (0usize, 0usize, 0f64);
    for name in shipped_names() {
        let track = Track::load(name).unwrap();
        let obstacles = raceloop_sim::scenario::generate(
            &track,
            &config.scenario.obstacles,
            config.vehicle.width,
            3,
            0.0,
        );
        assert!(
            obstacles.len() >= 5,
            "{name}: {} obstacles",
            obstacles.len()
        );
        let c = &track.centerline;
        for o in &obstacles {
            // From 1–8 m before the obstacle, near the centerline, looking roughly at it.
            let s = c.project(o.center()).s - rng.random_range(1.0..8.0);
            let p = c.point_at(s)
                + DVec2::from_angle(c.heading_at(s)).perp() * rng.random_range(-0.3..0.3);
            if o.hits_rect(p, c.heading_at(s), DVec2::splat(0.3)) {
                continue;
            }
            let yaw = c.heading_at(s) + rng.random_range(-0.4..0.4);
            lidar.scan_exact(&track.grid, &obstacles, p, yaw, &mut ranges);
            for (i, &r) in ranges.iter().enumerate() {
                let dir = DVec2::from_angle(yaw + config.lidar.beam_angle(i));
                let wall = raceloop_sim::lidar::brute_force_range(track.grid.segments(), p, dir);
                let hit = raceloop_sim::obstacle::brute_force_hit(&obstacles, p, dir);
                let obstacle = hit.map_or(f64::INFINITY, |(t, _)| t);
                let exact = wall.min(obstacle).min(max_range);
                let err = (r as f64 - exact).abs();
                assert!(
                    err <= 1e-3,
                    "{name}: beam {i} at ({:.3}, {:.3}) yaw {yaw:.4}: {r} m against {exact} m",
                    p.x,
                    p.y
                );
                worst = worst.max(err);
                checked += 1;
                on_obstacles += usize::from(obstacle < wall && obstacle < max_range);
            }
        }
    }
    println!(
        "{checked} beams checked on 15 tracks with obstacles, {on_obstacles} of them on an \
         obstacle; largest error {worst:.2e} m"
    );
    assert!(
        on_obstacles > 5_000,
        "too few beams on obstacles: {on_obstacles}"
    );
}

#[test]
fn footprint_contact_matches_an_exact_rectangle_test_on_every_track() {
    let config = SimConfig::default();
    let half = car_half(&config.vehicle);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(16);
    let (mut hits, mut clear) = (0, 0);
    for name in shipped_names() {
        let track = Track::load(name).unwrap();
        let segments = track.grid.segments();
        let c = &track.centerline;
        for k in 0..60 {
            let s = c.length() * (k as f64 + rng.random::<f64>()) / 60.0;
            let (wr, wl) = track.widths_at(s);
            // Up to 0.4 m beyond each edge, so that many poses touch or cross a wall.
            let d = rng.random_range(-(wr + 0.4)..wl + 0.4);
            let heading = c.heading_at(s);
            let p = c.point_at(s) + DVec2::from_angle(heading).perp() * d;
            let yaw = heading + rng.random_range(-1.6..1.6);
            let grid = track.grid.rect_hits_wall(p, yaw, half);
            let exact = rectangle_touches(segments, p, yaw, half);
            assert_eq!(
                grid, exact,
                "{name}: footprint at ({:.3}, {:.3}) yaw {yaw:.4}",
                p.x, p.y
            );
            if exact {
                hits += 1;
            } else {
                clear += 1;
            }
        }
    }
    println!("{hits} poses in contact and {clear} clear on 15 tracks, all matching");
    assert!(hits > 100 && clear > 100, "{hits} hits, {clear} clear");
}
