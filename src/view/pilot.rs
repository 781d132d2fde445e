//! Who drives in the window, starting episodes, and the keyboard pilot.

use std::time::Duration;

use bevy::prelude::*;
use raceloop_learn::Policy;
use raceloop_sim::{Action, PurePursuit, StartPose, draw_obstacles, draw_start};

use super::state::{Pilot, ResetEpisode, Trail, ViewConfig, ViewSettings};
use crate::episode::model_driver::ModelDriver;
use crate::episode::plugin::{Car, Control, Driver, Episode, RaceConfig, RaceTrack, car_bundle};

/// Time at which the last episode ended (for the auto reset).
#[derive(Resource, Default)]
pub struct EndedAt(Option<Duration>);

/// Spawns the first episode.
pub fn first_episode(world: &mut World) {
    world.init_resource::<EndedAt>();
    spawn_episode(world);
}

/// Replaces the car with a new one: the pilot, start and seed of [`ViewSettings`].
fn spawn_episode(world: &mut World) {
    let cars: Vec<Entity> = world
        .query_filtered::<Entity, With<Car>>()
        .iter(world)
        .collect();
    for car in cars {
        world.despawn(car);
    }
    let track = world.resource::<RaceTrack>().0.clone();
    let mut config = world.resource::<ViewConfig>().sim.clone();
    let settings = world.resource::<ViewSettings>().clone();
    let start = if settings.random_start {
        draw_start(&track, &config, settings.seed)
    } else {
        StartPose::at(&track, 0.0, 0.0, 0.0, 0.0)
    };
    let driver = match settings.pilot {
        Pilot::Manual => Driver::Manual,
        Pilot::PurePursuit => Driver::PurePursuit(PurePursuit::new(
            config.expert.clone(),
            &track,
            &config.vehicle,
        )),
        Pilot::Model => match Policy::load(&settings.model) {
            Ok(policy) => {
                config.lidar.num_beams = policy.config().num_beams;
                Driver::Model(Box::new(ModelDriver(policy)))
            }
            Err(e) => {
                world.resource_mut::<ViewSettings>().message = format!(
                    "cannot load {}: {e:#}; Pure Pursuit drives",
                    settings.model.display()
                );
                world.resource_mut::<ViewSettings>().pilot = Pilot::PurePursuit;
                Driver::PurePursuit(PurePursuit::new(
                    config.expert.clone(),
                    &track,
                    &config.vehicle,
                ))
            }
        },
    };
    config.scenario.obstacles.density = settings.obstacle_density;
    config.scenario.obstacles.generation.seed = settings.obstacle_seed;
    world.insert_resource(RaceConfig(config.clone()));
    let obstacles = draw_obstacles(&track, &config, settings.seed, &start);
    world.spawn(car_bundle(
        &track,
        &config,
        settings.seed,
        start,
        obstacles,
        driver,
    ));
    world.resource_mut::<EndedAt>().0 = None;
    world.resource_mut::<Trail>().0.clear();
}

/// Starts a new episode when asked (panel button, `R` key, pilot or track change).
pub fn reset_on_request(world: &mut World) {
    let mut requested = false;
    world.resource_scope(|_, mut messages: Mut<Messages<ResetEpisode>>| {
        requested = messages.drain().count() > 0;
    });
    let key = world
        .get_resource::<ButtonInput<KeyCode>>()
        .is_some_and(|k| k.just_pressed(KeyCode::KeyR));
    let typing = world
        .get_resource::<bevy_egui::input::EguiWantsInput>()
        .is_some_and(|w| w.wants_any_keyboard_input());
    if requested || (key && !typing) {
        spawn_episode(world);
    }
}

/// Restarts 1.5 s after an episode ends, with the next seed, when auto reset is on.
pub fn auto_reset(world: &mut World) {
    let done = world.query::<&Episode>().iter(world).any(|e| e.done());
    let now = world.resource::<Time<Real>>().elapsed();
    let settings = world.resource::<ViewSettings>();
    if !done || !settings.auto_reset || settings.paused {
        return;
    }
    let ended = *world.resource_mut::<EndedAt>().0.get_or_insert(now);
    if now - ended > Duration::from_millis(1500) {
        world.resource_mut::<ViewSettings>().seed += 1;
        spawn_episode(world);
    }
}

/// The keyboard pilot: the command is a target speed and steering angle (like the expert's),
/// moved by the keys at a steady rate and returning to straight when no steering key is held.
pub fn manual_input(
    keys: Res<ButtonInput<KeyCode>>,
    wants: Option<Res<bevy_egui::input::EguiWantsInput>>,
    settings: Res<RaceConfig>,
    time: Res<Time>,
    mut cars: Query<(&Driver, &mut Control)>,
) {
    let typing = wants.is_some_and(|w| w.wants_any_keyboard_input());
    let pressed = |a: KeyCode, b: KeyCode| !typing && (keys.pressed(a) || keys.pressed(b));
    let dt = time.delta_secs_f64();
    for (driver, mut command) in &mut cars {
        if !matches!(driver, Driver::Manual) {
            continue;
        }
        let p = &settings.0.vehicle;
        let Action {
            mut steering,
            mut speed,
        } = command.0;
        if pressed(KeyCode::ArrowUp, KeyCode::KeyW) {
            speed = (speed + 4.0 * dt).min(p.v_max);
        }
        if pressed(KeyCode::ArrowDown, KeyCode::KeyS) {
            speed = (speed - 6.0 * dt).max(p.v_min);
        }
        let steer_rate = 1.5 * dt;
        match (
            pressed(KeyCode::ArrowLeft, KeyCode::KeyA),
            pressed(KeyCode::ArrowRight, KeyCode::KeyD),
        ) {
            // REP-103: positive steering turns left.
            (true, false) => steering = (steering + steer_rate).min(p.s_max),
            (false, true) => steering = (steering - steer_rate).max(p.s_min),
            _ => steering -= steering.signum() * steering.abs().min(2.0 * steer_rate),
        }
        command.0 = Action { steering, speed };
    }
}

#[cfg(test)]
mod tests {
    use bevy::ecs::system::RunSystemOnce;

    use super::*;

    /// The command after holding `keys` for 0.1 s, starting from rest.
    fn hold(keys: &[KeyCode]) -> Action {
        let mut world = World::new();
        let mut input = ButtonInput::<KeyCode>::default();
        for k in keys {
            input.press(*k);
        }
        world.insert_resource(input);
        world.insert_resource(RaceConfig(raceloop_sim::SimConfig::default()));
        let mut time = Time::<()>::default();
        time.advance_by(Duration::from_millis(100));
        world.insert_resource(time);
        let car = world.spawn((Driver::Manual, Control::default())).id();
        world.run_system_once(manual_input).unwrap();
        world.get::<Control>(car).unwrap().0
    }

    fn driver(world: &mut World) -> &'static str {
        let drivers: Vec<&'static str> = world
            .query_filtered::<&Driver, With<Car>>()
            .iter(world)
            .map(|d| match d {
                Driver::Manual => "manual",
                Driver::PurePursuit(_) => "expert",
                Driver::Model(_) => "model",
                Driver::NoisyExpert(..) => "noisy",
                Driver::Dagger(..) => "dagger",
            })
            .collect();
        assert_eq!(drivers.len(), 1, "one car");
        drivers[0]
    }

    #[test]
    fn switching_pilot_respawns_the_car_with_that_driver() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let resolved = crate::config::Resolved::load(&root.join("configs"), &[]).unwrap();
        let mut world = World::new();
        world.insert_resource(RaceTrack(std::sync::Arc::new(
            raceloop_sim::Track::load("Austin").unwrap(),
        )));
        world.insert_resource(ViewConfig {
            sim: resolved.sim(),
            resolved,
            tracks: Vec::new(),
        });
        world.insert_resource(ViewSettings::new(&crate::view::state::ViewArgs {
            model: root.join("models/default"),
            ..Default::default()
        }));
        world.insert_resource(Trail::default());
        first_episode(&mut world);
        assert_eq!(driver(&mut world), "expert");
        for (pilot, expected) in [(Pilot::Manual, "manual"), (Pilot::Model, "model")] {
            world.resource_mut::<ViewSettings>().pilot = pilot;
            spawn_episode(&mut world);
            assert_eq!(driver(&mut world), expected);
        }
        world.resource_mut::<ViewSettings>().model = root.join("models/none");
        spawn_episode(&mut world);
        assert_eq!(
            driver(&mut world),
            "expert",
            "an unloadable model falls back"
        );
        let s = world.resource::<ViewSettings>();
        assert_eq!(s.pilot, Pilot::PurePursuit);
        assert!(s.message.contains("models/none"), "{}", s.message);
    }

    #[test]
    fn keys_map_to_speed_and_rep103_steering() {
        let a = hold(&[KeyCode::ArrowUp, KeyCode::ArrowLeft]);
        assert!(a.speed > 0.3 && a.steering > 0.1, "{a:?}");
        let a = hold(&[KeyCode::KeyW, KeyCode::KeyD]);
        assert!(a.speed > 0.3 && a.steering < -0.1, "{a:?}");
        let a = hold(&[KeyCode::KeyS]);
        assert!(a.speed < 0.0 && a.steering == 0.0, "{a:?}");
        assert_eq!(hold(&[]), Action::default());
    }
}
