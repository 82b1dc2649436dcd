//! `wgrad train --every 1` killed with SIGKILL at many moments of a run (issue 12): after each
//! kill, the checkpoint on disk (if any) loads, the optimizer sidecar it names exists and loads,
//! both agree on the step, and `--resume` from it, in place as a user would rerun the command,
//! reaches the same bits as an uninterrupted run: parameters, optimizer state, metadata and the
//! loss log.
//!
//! The kill moments follow the killed run's own progress, read from its "step N" lines: a
//! random point of the interval after each of many steps (a checkpoint's writes, the next
//! step, the final save), a few during the start-up and one after the end, with different
//! random offsets each time the test runs. On a small data set (48 images, 5 held out) a step's
//! writes (sidecar, checkpoint, loss log and curve, each fsynced) take most of its time, so many
//! kills land inside a write.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wgrad::io::{Checkpoint, LossLog, load_model};

/// Steps of every run; each one writes a checkpoint (`--every 1`).
const STEPS: u64 = 12;
/// Kills, each in a fresh folder.
const KILLS: usize = 20;
const CKPT: &str = "a.safetensors";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrad-kill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 48 gray 28×28 images as an IDX file: 43 train and 5 held out, so the held-out loss each
/// checkpoint computes is cheap next to the writes.
fn small_idx(path: &Path) {
    let n = 48u32;
    let mut bytes = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        bytes.extend(d.to_be_bytes());
    }
    for i in 0..n as usize {
        bytes.extend((0..784).map(|k| ((i * 131 + k * 37) % 251) as u8));
    }
    std::fs::write(path, bytes).unwrap();
}

/// `wgrad train` on `data` for [`STEPS`] steps, a checkpoint after each, saved at `save`.
fn train_command(data: &Path, save: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgrad"));
    c.args(["train", "--backend", "cpu", "--batch", "8", "--seed", "5"])
        .args(["--steps", &STEPS.to_string(), "--every", "1", "--no-cache"])
        .arg("--data")
        .arg(data)
        .arg("--save")
        .arg(save);
    if resume {
        c.arg("--resume").arg(save);
    }
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn run_ok(mut c: Command, what: &str) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bits(tensors: &[(String, wgrad::Tensor)]) -> Vec<(String, Vec<u32>)> {
    tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

/// Everything a finished run leaves that must not depend on whether it was interrupted.
#[derive(Debug, PartialEq)]
struct Outcome {
    step: u64,
    params: Vec<(String, Vec<u32>)>,
    optimizer: Vec<(String, Vec<u32>)>,
    metadata: BTreeMap<String, String>,
    /// The loss log without its throughput column: step, epoch, train and held-out loss bits.
    losses: Vec<(u64, u64, u32, Option<u32>)>,
}

fn outcome(d: &Path) -> Outcome {
    let m = load_model(&d.join(CKPT)).unwrap();
    let log = LossLog::read_csv(d.join("a.loss.csv")).unwrap();
    Outcome {
        step: m.state.step,
        params: bits(&m.state.params),
        optimizer: bits(&m.state.optimizer),
        metadata: m.metadata,
        losses: log
            .rows
            .iter()
            .map(|r| {
                (
                    r.step,
                    r.epoch,
                    r.train_loss.to_bits(),
                    r.test_loss.map(f32::to_bits),
                )
            })
            .collect(),
    }
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Checks what a kill left in `d`; returns the checkpoint's step (None: no checkpoint yet).
fn check_after_kill(d: &Path, k: usize) -> Option<u64> {
    let path = d.join(CKPT);
    if !path.exists() {
        return None;
    }
    let files = names(d);
    let ckpt = Checkpoint::load(&path)
        .unwrap_or_else(|e| panic!("kill {k}: the checkpoint does not load: {e}\n{files:?}"));
    let step = ckpt
        .step()
        .unwrap()
        .expect("the checkpoint records its step");
    assert!((1..=STEPS).contains(&step), "kill {k}: step {step}");
    let side = ckpt
        .metadata
        .get("wgrad.optimizer_state")
        .unwrap_or_else(|| panic!("kill {k}: the checkpoint names no optimizer state"));
    assert_eq!(side, &format!("a.optim-{step}.safetensors"), "kill {k}");
    let opt = Checkpoint::load(d.join(side)).unwrap_or_else(|e| {
        panic!("kill {k}: the checkpoint at step {step} names {side}, which does not load: {e}\n{files:?}")
    });
    assert_eq!(
        opt.step().unwrap(),
        Some(step),
        "kill {k}: {side} and the checkpoint disagree on the step"
    );
    assert!(!opt.tensors.is_empty(), "kill {k}: {side} holds no state");
    // The library's loader agrees (it checks the same, and is what --resume uses).
    let m = load_model(&path).unwrap_or_else(|e| panic!("kill {k}: load_model: {e}"));
    assert_eq!(m.state.step, step);
    assert_eq!(m.state.optimizer.len(), opt.tensors.len());
    // The loss log, when there is one, reads back (it is written atomically too).
    let log = d.join("a.loss.csv");
    if log.exists() {
        LossLog::read_csv(&log).unwrap_or_else(|e| panic!("kill {k}: the loss log: {e}"));
    }
    Some(step)
}

/// A `wgrad train` running with its stderr watched: `steps` receives each "step N: ..." line's
/// N (printed just before step N's checkpoint is written) and when it arrived; it disconnects
/// when the process closes its stderr (exits or is killed).
struct Watched {
    child: Child,
    steps: mpsc::Receiver<(u64, Instant)>,
    reader: std::thread::JoinHandle<()>,
}

fn spawn(mut c: Command) -> Watched {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, steps) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let n = line
                .strip_prefix("step ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(n) = n {
                let _ = tx.send((n, Instant::now()));
            }
        }
    });
    Watched {
        child,
        steps,
        reader,
    }
}

/// splitmix64: the kill moments' random offsets.
fn next_random(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// When to kill a run.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// This long after the start.
    AfterStart(Duration),
    /// This long after the "step N" line (step N's checkpoint is about to be written).
    AfterStep(u64, Duration),
    /// Once the run has exited by itself.
    AtExit,
}

#[test]
fn killed_at_any_moment_the_checkpoint_loads_and_resume_is_bit_identical() {
    let started = Instant::now();
    let root = dir("root");
    let data = root.join("images.idx");
    small_idx(&data);

    // The uninterrupted run, twice: the reference outcome (the same both times), and how long
    // the start-up (to the first "step" line) and a step (from one "step" line to the next,
    // checkpoint included) take, to place the kills. The kills are anchored to the killed
    // run's own progress, so a machine slower or busier than during these runs still gets
    // kills all over the run.
    let mut startup = Duration::MAX;
    let mut intervals = Vec::new();
    let mut run_time = Duration::MAX;
    let mut want = None;
    for r in 0..2 {
        let reference = dir(&format!("reference-{r}"));
        let t0 = Instant::now();
        let mut w = spawn(train_command(&data, &reference.join(CKPT), false));
        let times: Vec<(u64, Instant)> = w.steps.iter().collect();
        let status = w.child.wait().unwrap();
        w.reader.join().unwrap();
        run_time = run_time.min(t0.elapsed());
        assert!(status.success(), "the uninterrupted run failed");
        assert_eq!(
            times.iter().map(|t| t.0).collect::<Vec<_>>(),
            (1..=STEPS).collect::<Vec<_>>(),
            "a \"step N\" line per checkpoint"
        );
        startup = startup.min(times[0].1 - t0);
        intervals.extend(times.windows(2).map(|w| w[1].1 - w[0].1));
        let got = outcome(&reference);
        assert_eq!(got.step, STEPS);
        assert_eq!(
            names(&reference),
            [
                "a.loss.csv",
                "a.loss.png",
                &format!("a.optim-{STEPS}.safetensors"),
                "a.reconstructions.png",
                CKPT
            ],
            "an uninterrupted run leaves one sidecar and no temporary file"
        );
        match &want {
            None => want = Some(got),
            Some(w) => assert!(
                &got == w,
                "two uninterrupted runs differ:\n{}",
                describe_difference(&got, w)
            ),
        }
        let _ = std::fs::remove_dir_all(&reference);
    }
    let want = want.unwrap();
    intervals.sort();
    let step_time = intervals[intervals.len() / 2];

    // The moments: two during the start-up (before or during the first checkpoint), one after
    // each anchor step spread over 1..=STEPS, at a random point of the following step interval
    // (so in a checkpoint's writes, the next step's compute, or the final save), and one after
    // the run has ended (resuming a finished run must change nothing).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ std::process::id() as u64;
    let mut rng = seed;
    let mut moments = Vec::new();
    for _ in 0..2 {
        moments.push(Moment::AfterStart(
            startup.mul_f64(1.1 * next_random(&mut rng)),
        ));
    }
    let anchored = KILLS - 3;
    for j in 0..anchored {
        let anchor = 1 + (j as u64 * STEPS) / anchored as u64;
        moments.push(Moment::AfterStep(
            anchor,
            step_time.mul_f64(next_random(&mut rng)),
        ));
    }
    moments.push(Moment::AtExit);
    assert_eq!(moments.len(), KILLS);
    println!(
        "uninterrupted run: {:.2} s for {STEPS} steps, start-up {:.0} ms, a step {:.0} ms \
         (median); random offsets from seed {seed:#x}",
        run_time.as_secs_f64(),
        startup.as_secs_f64() * 1e3,
        step_time.as_secs_f64() * 1e3,
    );

    let (mut before, mut mid, mut after) = (0, 0, 0);
    let (mut with_temp, mut with_stray_sidecar) = (0, 0);
    let mut steps_seen = std::collections::BTreeSet::new();
    let mut leftovers_after_resume = 0usize;
    for (k, &moment) in moments.iter().enumerate() {
        let d = dir(&format!("kill-{k}"));
        let save = d.join(CKPT);
        let t0 = Instant::now();
        let mut w = spawn(train_command(&data, &save, false));
        match moment {
            Moment::AfterStart(delay) => std::thread::sleep(delay),
            Moment::AfterStep(anchor, delay) => {
                // Wait for the anchor's line (or the end of the run, if it never comes).
                if let Some((_, at)) = w.steps.iter().find(|&(n, _)| n >= anchor) {
                    std::thread::sleep((at + delay).saturating_duration_since(Instant::now()));
                }
            }
            Moment::AtExit => {
                w.child.wait().unwrap();
            }
        }
        let killed_at = t0.elapsed();
        let finished = w.child.try_wait().unwrap().is_some();
        if !finished {
            w.child.kill().unwrap(); // SIGKILL
        }
        let status = w.child.wait().unwrap();
        w.reader.join().unwrap();

        let files = names(&d);
        let temps: Vec<&String> = files.iter().filter(|f| f.ends_with(".tmp")).collect();
        let step = check_after_kill(&d, k);
        let named = step.map(|s| format!("a.optim-{s}.safetensors"));
        let strays: Vec<&String> = files
            .iter()
            .filter(|f| f.starts_with("a.optim-") && Some(*f) != named.as_ref())
            .collect();
        let when = if finished {
            assert!(status.success(), "kill {k}: the run finished but failed");
            after += 1;
            "after the end"
        } else if step.is_none() {
            before += 1;
            "before the first checkpoint"
        } else {
            mid += 1;
            "mid-run"
        };
        if let Some(s) = step {
            steps_seen.insert(s);
        }
        with_temp += usize::from(!temps.is_empty());
        with_stray_sidecar += usize::from(!strays.is_empty());
        println!(
            "kill {k:2} {moment:?}, at {:5.0} ms: {when}, checkpoint step {}, temporaries {temps:?}, other sidecars {strays:?}",
            killed_at.as_secs_f64() * 1e3,
            step.map_or("-".into(), |s| s.to_string()),
        );

        // What a user does next: the same command with --resume from the checkpoint (or, when
        // there is none yet, the same command again), in the same folder.
        run_ok(
            train_command(&data, &save, step.is_some()),
            &format!("kill {k}: rerunning"),
        );
        let got = outcome(&d);
        assert!(
            got == want,
            "kill {k} ({when}, checkpoint step {step:?}): the resumed run differs from the uninterrupted one:\n{}",
            describe_difference(&got, &want)
        );
        // A kill's temporary files stay (nothing removes them); count what is left beside the
        // final files, which must include the final sidecar.
        let after_files = names(&d);
        assert!(
            after_files.contains(&format!("a.optim-{STEPS}.safetensors")),
            "kill {k}: {after_files:?}"
        );
        let extra = after_files
            .iter()
            .filter(|f| {
                !matches!(
                    f.as_str(),
                    "a.loss.csv" | "a.loss.png" | "a.reconstructions.png" | CKPT
                ) && **f != format!("a.optim-{STEPS}.safetensors")
            })
            .count();
        if extra > 0 {
            println!("         after resuming, left over: {after_files:?}");
        }
        leftovers_after_resume += extra;
        let _ = std::fs::remove_dir_all(&d);
    }
    let _ = std::fs::remove_dir_all(&root);

    println!(
        "kills: {before} before the first checkpoint, {mid} mid-run, {after} after the end; \
         {with_temp} left a temporary file (killed inside a write), {with_stray_sidecar} a sidecar \
         the checkpoint does not name; checkpoint steps seen {steps_seen:?}; \
         {leftovers_after_resume} leftover file(s) after resuming; {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    assert!(
        mid >= KILLS / 3,
        "only {mid} of {KILLS} kills landed mid-run: the test checked too little"
    );
    assert!(
        steps_seen.len() >= 3,
        "the kills saw checkpoints of only {steps_seen:?}"
    );
}

fn describe_difference(got: &Outcome, want: &Outcome) -> String {
    let mut s = String::new();
    if got.step != want.step {
        s += &format!("step {} vs {}\n", got.step, want.step);
    }
    for (what, g, w) in [
        ("parameter", &got.params, &want.params),
        ("optimizer", &got.optimizer, &want.optimizer),
    ] {
        if g.len() != w.len() {
            s += &format!("{} {what} tensors vs {}\n", g.len(), w.len());
        }
        for ((gn, gb), (wn, wb)) in g.iter().zip(w) {
            if gn != wn || gb != wb {
                let n = gb.iter().zip(wb).filter(|(a, b)| a != b).count();
                s += &format!("{what} {gn} / {wn}: {n} elements differ\n");
            }
        }
    }
    if got.metadata != want.metadata {
        s += &format!("metadata {:?}\n  vs {:?}\n", got.metadata, want.metadata);
    }
    if got.losses != want.losses {
        let steps = |o: &Outcome| o.losses.iter().map(|r| r.0).collect::<Vec<_>>();
        s += &format!("loss log steps {:?}\n  vs {:?}\n", steps(got), steps(want));
        for (g, w) in got.losses.iter().zip(&want.losses) {
            if g != w {
                s += &format!("first differing loss row {g:?} vs {w:?}\n");
                break;
            }
        }
    }
    s
}
