//! Walls of the shipped tracks: clearance from the centerline, no folds, Montreal's hairpin.

use glam::DVec2;
use raceloop_sim::Track;
use raceloop_sim::track::{Segment, shipped_names};

fn point_segment_distance(p: DVec2, s: &Segment) -> f64 {
    let e = s.b - s.a;
    let u = ((p - s.a).dot(e) / e.length_squared()).clamp(0.0, 1.0);
    p.distance(s.a + e * u)
}

fn segments_cross(a: &Segment, b: &Segment) -> bool {
    let side = |p: DVec2, s: &Segment| (s.b - s.a).perp_dot(p - s.a);
    let (d1, d2) = (side(a.a, b), side(a.b, b));
    let (d3, d4) = (side(b.a, a), side(b.b, a));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// Whether centerline point `i` has another section of the track (arc-length separation more than
/// twice their distance + 0.5 m, as in tracks/README.md) within `reach` m.
fn near_other_section(t: &Track, i: usize, reach: f64) -> bool {
    let c = &t.centerline;
    let p = c.points()[i];
    c.points().iter().enumerate().any(|(j, q)| {
        let dist = p.distance(*q);
        dist < reach && c.delta_s(c.s_at_point(i), c.s_at_point(j)).abs() > 2.0 * dist + 0.5
    })
}

#[test]
fn walls_keep_half_width_clearance_where_sections_do_not_overlap() {
    for name in shipped_names() {
        let t = Track::load(name).unwrap();
        let segs = t.grid.segments();
        let mut checked = 0;
        for (i, &p) in t.centerline.points().iter().enumerate() {
            let hw = t.w_left[i].min(t.w_right[i]);
            if near_other_section(&t, i, 2.0 * hw + 0.1) {
                continue;
            }
            let clearance = segs
                .iter()
                .map(|s| point_segment_distance(p, s))
                .fold(f64::INFINITY, f64::min);
            assert!(
                clearance >= hw - 0.01,
                "{name}: point {i} clearance {clearance:.4} < {hw} - 1 cm"
            );
            assert!(
                t.grid.contains(p),
                "{name}: centerline point {i} outside the walls"
            );
            checked += 1;
        }
        assert!(
            checked > t.centerline.len() * 9 / 10,
            "{name}: only {checked} points checked"
        );
    }
}

#[test]
fn no_wall_is_folded_or_self_intersecting() {
    for name in shipped_names() {
        let t = Track::load(name).unwrap();
        let segs = t.grid.segments();
        // Every pair of non-adjacent edges: walls never cross each other or themselves.
        for i in 0..segs.len() {
            for j in i + 1..segs.len() {
                let (a, b) = (&segs[i], &segs[j]);
                if a.b == b.a || b.b == a.a {
                    continue;
                }
                assert!(
                    !segments_cross(a, b),
                    "{name}: wall edges {i} and {j} cross at {:?}",
                    a.a
                );
            }
        }
    }
}

#[test]
fn montreals_hairpin_legs_share_the_inner_wall_and_austin_has_two_clean_walls() {
    // The wall between the hairpin's legs (see `separate_sections`) reaches into the hairpin
    // from the inner wall, so no island is left between the legs as in a merged corridor.
    let montreal = Track::load("Montreal").unwrap();
    let areas: Vec<f64> = montreal
        .walls
        .iter()
        .map(|r| raceloop_sim::track::signed_area(r))
        .collect();
    assert_eq!(
        areas.len(),
        2,
        "Montreal: one outer and one inner wall: {areas:?}"
    );

    let austin = Track::load("Austin").unwrap();
    assert_eq!(
        austin.walls.len(),
        2,
        "Austin: one outer and one inner wall"
    );
}

/// A 100 km square (coordinates in mm, say) is an error naming the file, not an aborted
/// process (the wall grid would have needed 40 GB).
#[test]
fn a_track_too_large_for_the_wall_grid_is_an_error() {
    let path = std::env::temp_dir().join(format!("raceloop-huge-{}.csv", std::process::id()));
    std::fs::write(
        &path,
        "# x_m,y_m,w_tr_right_m,w_tr_left_m\n0,0,1,1\n100000,0,1,1\n100000,100000,1,1\n0,100000,1,1\n",
    )
    .unwrap();
    let e = Track::load(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(
        e.contains("raceloop-huge") && e.contains("spans 1000") && e.contains("1 km × 1 km"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
}
