//! The matmul autotuner on every adapter: it measures each candidate mapping, keeps the fastest
//! in the cache file, a later context reads it back, the off switch ignores it, a cache written
//! for another adapter or driver is not used, and clearing removes the files. Fresh contexts, so
//! the shared ones of the other tests keep their default mode.

use wgrad::GpuContext;
use wgrad::MatmulSpec;
use wgrad::gpu::kernels::matmul::MatmulTile;
use wgrad::gpu::tune::{self, TuneMode};

fn fresh_contexts() -> Vec<GpuContext> {
    GpuContext::all(&wgrad::Options::default())
        .into_iter()
        .filter_map(|c| c.ok())
        .collect()
}

#[test]
fn tuner_measures_caches_reads_back_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MatmulSpec::new(20, 24, 28);
    for (i, ctx) in fresh_contexts().iter().enumerate() {
        let file = dir.path().join(format!("tune-test{i}.json"));
        tune::set_mode(ctx, TuneMode::On);
        tune::set_cache_file(ctx, Some(file.clone()));
        let tile = tune::choose(ctx, &spec).unwrap();
        let cached = tune::cached(ctx);
        assert_eq!(cached.len(), 1, "{}", ctx.describe());
        let (key, tuned) = &cached[0];
        assert_eq!(key, &tune::shape_key(&spec));
        assert_eq!(tuned.tile, tile);
        let candidates = tune::candidates(ctx, &spec);
        assert_eq!(tuned.times.len(), candidates.len(), "every candidate timed");
        assert!(candidates.contains(&tile));
        let fastest = tuned
            .times
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(fastest.0, tile, "the winner is the fastest candidate");
        assert!(tuned.times.iter().all(|t| t.1 > 0.0 && t.1.is_finite()));
        assert!(file.exists(), "cache written");
        assert_eq!(tune::save_error(ctx), None);

        // A cache whose winner is not the cost model's choice: a new context reads it back
        // (mode `cached` measures nothing), and the off switch ignores it.
        let other = GpuContext::all(&wgrad::Options::default())
            .into_iter()
            .nth(i)
            .unwrap()
            .unwrap();
        let planted = MatmulTile::Rows { wg_x: 64 };
        assert_ne!(MatmulTile::for_shape(&other, &spec), planted);
        let text = std::fs::read_to_string(&file).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["shapes"][key]["tile"] = serde_json::to_value(planted).unwrap();
        std::fs::write(&file, json.to_string()).unwrap();
        tune::set_mode(&other, TuneMode::Cached);
        tune::set_cache_file(&other, Some(file.clone()));
        assert_eq!(tune::choose(&other, &spec).unwrap(), planted);
        // A hand-edited entry the kernels cannot run (an empty workgroup, a block size no
        // kernel has, a workgroup over the device's limits) is not used: the cost model's
        // choice is, and no launch fails on it.
        for bad in [
            MatmulTile::Blocks { wg_x: 0, wg_y: 8 },
            MatmulTile::Reg {
                bm: 5,
                bn: 4,
                wg_x: 8,
                wg_y: 1,
                vec4: true,
            },
            MatmulTile::Rows { wg_x: 1 << 20 },
        ] {
            json["shapes"][key]["tile"] = serde_json::to_value(bad).unwrap();
            std::fs::write(&file, json.to_string()).unwrap();
            tune::set_cache_file(&other, Some(file.clone()));
            assert_eq!(
                tune::choose(&other, &spec).unwrap(),
                MatmulTile::for_shape(&other, &spec),
                "{bad:?} on {}",
                other.describe()
            );
            assert_eq!(
                tune::choose_now(&other, &spec),
                MatmulTile::for_shape(&other, &spec)
            );
        }
        json["shapes"][key]["tile"] = serde_json::to_value(planted).unwrap();
        std::fs::write(&file, json.to_string()).unwrap();
        tune::set_mode(&other, TuneMode::Off);
        tune::set_cache_file(&other, Some(file.clone()));
        assert_eq!(
            tune::choose(&other, &spec).unwrap(),
            MatmulTile::for_shape(&other, &spec)
        );

        // A cache written for another adapter or driver is not used.
        json["adapter"] = "some other GPU | driver 0.0".into();
        std::fs::write(&file, json.to_string()).unwrap();
        tune::set_mode(&other, TuneMode::Cached);
        tune::set_cache_file(&other, Some(file.clone()));
        assert!(tune::cached(&other).is_empty());
    }
    let removed = tune::clear_in(dir.path()).unwrap();
    assert!(!removed.is_empty());
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// A cache file that cannot be written does not fail the product: the winner is used and kept
/// in memory, and the failure is reported.
#[test]
fn unwritable_cache_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let spec = MatmulSpec::new(8, 8, 8);
    if let Some(ctx) = fresh_contexts().first() {
        tune::set_mode(ctx, TuneMode::On);
        tune::set_cache_file(ctx, Some(blocker.join("tune.json")));
        let tile = tune::choose(ctx, &spec).unwrap();
        assert_eq!(tune::cached(ctx)[0].1.tile, tile);
        assert!(tune::save_error(ctx).is_some());
    }
}

/// The tuner's mode and cache directory come from the caller's options: a cache directory
/// given there receives the winners; with none (the default) the adapter's default mode runs
/// and no cache file exists.
#[test]
fn options_choose_the_mode_and_the_cache_directory() {
    let dir = tempfile::tempdir().unwrap();
    let with_dir = wgrad::Options {
        tune: Some(TuneMode::On),
        cache_dir: Some(dir.path().to_path_buf()),
        ..wgrad::Options::default()
    };
    for ctx in GpuContext::all(&with_dir).into_iter().flatten().take(1) {
        assert_eq!(tune::mode(&ctx), TuneMode::On);
        let path = tune::cache_path(&ctx).unwrap();
        assert!(path.starts_with(dir.path()));
        tune::choose(&ctx, &MatmulSpec::new(12, 8, 20)).unwrap();
        assert!(path.exists(), "{} was not written", path.display());
    }
    for ctx in GpuContext::all(&wgrad::Options::default())
        .into_iter()
        .flatten()
    {
        assert_eq!(tune::cache_path(&ctx), None, "no disk cache by default");
        let default = if ctx.is_cpu_driver() {
            TuneMode::Cached
        } else {
            TuneMode::On
        };
        assert_eq!(tune::mode(&ctx), default);
    }
}

/// A candidate that cannot run — here a workgroup over the adapter's invocation limit, as a
/// stale cache or a wrong guess could propose — is skipped and remembered, and the shape is
/// still tuned with the others instead of failing (inside a program's compile it would have
/// failed the compile).
#[test]
fn a_failing_candidate_is_skipped_and_remembered() {
    let spec = MatmulSpec::new(12, 16, 20);
    for ctx in fresh_contexts() {
        let over = MatmulTile::Blocks { wg_x: 64, wg_y: 64 };
        assert!(over.usable(&ctx).is_err(), "{}", ctx.describe());
        assert!(!tune::candidates(&ctx, &spec).contains(&over));
        let good = MatmulTile::for_shape(&ctx, &spec);
        let tuned = tune::measure_candidates(&ctx, &spec, &[over, good]).unwrap();
        assert_eq!(tuned.tile, good, "{}", ctx.describe());
        assert_eq!(tuned.times.len(), 1);
        assert_eq!(tuned.failed.len(), 1);
        assert_eq!(tuned.failed[0].0, over);
        assert!(
            tuned.failed[0].1.contains("invocations"),
            "{}",
            tuned.failed[0].1
        );
        assert!(tune::failed(&ctx).iter().any(|f| f.0 == over));
        // Nothing ran: an error, not a panic or a default.
        assert!(tune::measure_candidates(&ctx, &spec, &[over]).is_err());
    }
}

/// Tuning stops measuring once its budget is spent: shapes met later take the cost model's
/// choice (measured in a later run); with no budget every new shape is measured.
#[test]
fn tuning_keeps_to_its_budget() {
    let spec = MatmulSpec::new(9, 10, 11);
    if let Some(ctx) = fresh_contexts().first() {
        tune::set_mode(ctx, TuneMode::On);
        tune::set_cache_file(ctx, None);
        tune::set_budget(ctx, Some(std::time::Duration::ZERO));
        assert_eq!(
            tune::choose(ctx, &spec).unwrap(),
            MatmulTile::for_shape(ctx, &spec)
        );
        assert!(tune::cached(ctx).is_empty(), "nothing measured");
        tune::set_budget(ctx, None);
        tune::choose(ctx, &spec).unwrap();
        assert_eq!(tune::cached(ctx).len(), 1, "measured");
    }
}
