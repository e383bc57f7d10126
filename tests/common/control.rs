//! Shared by the migration-control tests (tests/control_*.rs): instances as separate OS
//! processes (this test binary, run with `--ignored --exact control_child_instance`), the
//! barrier, the gates, concurrent steps, and an unreadable control table.
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (both processes run on this host).
pub fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// A line an instance printed: `PHASE <pattern> <epoch> <unix ms>`.
#[derive(Clone, Debug)]
pub struct Applied {
    pub instance: usize,
    pub pattern: String,
    pub epoch: i64,
    pub at_ms: u128,
}

/// Instances of the service as child processes; killed when dropped.
pub struct Instances {
    children: Vec<Child>,
    pub ids: Vec<String>,
    lines: mpsc::Receiver<Applied>,
    seen: Vec<Applied>,
}

impl Instances {
    /// Starts `n` instances following `migration` on `url`, polling every `poll`, listening
    /// (PostgreSQL) if `listen`; waits until each printed its first phase.
    pub fn start(url: &str, migration: &str, n: usize, poll: Duration, listen: bool) -> Instances {
        let (tx, rx) = mpsc::channel();
        let mut children = Vec::new();
        let mut ids = Vec::new();
        for i in 0..n {
            let id = format!("{migration}-instance-{i}");
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "control_child_instance",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CTL_CHILD_URL", url)
                .env("CTL_CHILD_MIGRATION", migration)
                .env("CTL_CHILD_ID", &id)
                .env("CTL_CHILD_POLL_MS", poll.as_millis().to_string())
                .env("CTL_CHILD_LISTEN", if listen { "1" } else { "0" })
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let out = child.stdout.take().unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    // The harness starts the first line with `test control_child_instance ... `.
                    let Some(at) = line.find("PHASE ") else {
                        continue;
                    };
                    let f: Vec<&str> = line[at..].split_whitespace().collect();
                    if f.len() == 4 && f[0] == "PHASE" {
                        let _ = tx.send(Applied {
                            instance: i,
                            pattern: f[1].to_owned(),
                            epoch: f[2].parse().unwrap(),
                            at_ms: f[3].parse().unwrap(),
                        });
                    }
                }
            });
            children.push(child);
            ids.push(id);
        }
        let mut me = Instances {
            children,
            ids,
            lines: rx,
            seen: Vec::new(),
        };
        for i in 0..n {
            me.wait_applied(i, None, 120);
        }
        me
    }

    /// Waits up to `secs` for instance `i` to print a phase of `epoch` (any, if `None`).
    pub fn wait_applied(&mut self, i: usize, epoch: Option<i64>, secs: u64) -> Applied {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(a) = self
                .seen
                .iter()
                .find(|a| a.instance == i && epoch.is_none_or(|e| a.epoch == e))
            {
                return a.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "instance {i} did not apply epoch {epoch:?} within {secs} s (seen: {:?})",
                self.seen
            );
            if let Ok(a) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                self.seen.push(a);
            }
        }
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.children[i].id()
    }

    pub fn signal(&self, i: usize, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.pid(i).to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal} {}", self.pid(i));
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        for (i, c) in self.children.iter_mut().enumerate() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
            let _ = i;
        }
    }
}

/// Waits up to `secs` for `f` to hold.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The suite: `control_suite!(Conn, bed_fn)`; `bed_fn` gives a [`MigBed`](super::migrate::MigBed).
macro_rules! control_suite {
    ($conn:ty, $bed:path) => {
        use std::sync::{Arc, Barrier};
        use std::time::Duration;

        use diesel::connection::SimpleConnection;
        use diesel_rw::double_write::{DoubleWrite, Pattern, Side};
        use diesel_rw::migrate::control::{
            Control, CutoverGates, Direction, Fleet, Gate, NoGates, Refusal, StepOptions,
        };
        use diesel_rw::migrate::verify::Verify;
        use diesel_rw::migrate::{Backfill, Dialect, MigrateConnection};
        use diesel_rw::Error;
        use ctl::*;
        use mig::*;

        type Conn = $conn;
        const D: Dialect = <$conn as MigrateConnection>::DIALECT;

        macro_rules! bed {
            ($name:literal) => {
                match $bed(concat!("ctl_", $name)) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        /// A connection; on SQLite, one that waits for the instances' writes to the file.
        fn open(url: &str) -> Conn {
            let mut c: Conn = <Conn as diesel::Connection>::establish(url).unwrap();
            if D == Dialect::Sqlite {
                c.batch_execute("PRAGMA busy_timeout = 30000").unwrap();
            }
            c
        }

        /// A fresh migration named after the test (its rows removed first).
        fn fresh(bed: &MigBed, name: &str) -> (Fleet, Conn) {
            let mut c: Conn = open(&bed.src);
            let fleet = Fleet::new(name);
            fleet.init(&mut c, Pattern::SrcOnly).unwrap();
            let t = fleet.control_tables().clone();
            for (table, _) in [(t.control(), ()), (t.instance(), ()), (t.log(), ())] {
                c.batch_execute(&format!("DELETE FROM {table} WHERE migration = '{name}'")).unwrap();
            }
            fleet.init(&mut c, Pattern::SrcOnly).unwrap();
            (fleet, c)
        }

        fn step(fleet: &Fleet, c: &mut Conn, d: Direction) -> diesel_rw::Result<diesel_rw::migrate::control::Stepped> {
            fleet.step(c, d, &mut NoGates, &StepOptions::new().wait(Duration::from_secs(60)))
        }

        /// Run by the tests as a child process (this test binary): one instance of the
        /// service, printing `PHASE <pattern> <epoch> <unix ms>` whenever its switch changes.
        #[test]
        #[ignore = "the child process of the control tests (an instance of the service), which run it with --ignored and kill it"]
        fn control_child_instance() {
            let (Ok(url), Ok(migration), Ok(id), Ok(poll), Ok(listen)) = (
                std::env::var("CTL_CHILD_URL"),
                std::env::var("CTL_CHILD_MIGRATION"),
                std::env::var("CTL_CHILD_ID"),
                std::env::var("CTL_CHILD_POLL_MS"),
                std::env::var("CTL_CHILD_LISTEN"),
            ) else {
                return;
            };
            let control = Control::builder::<Conn>(url, migration)
                .instance_id(id)
                .poll_interval(Duration::from_millis(poll.parse().unwrap()))
                .listen(listen == "1")
                .start()
                .unwrap();
            let switch = control.switch();
            let mut last = None;
            loop {
                let now = (switch.get(), control.status().epoch);
                if last != Some(now) {
                    println!("PHASE {} {} {}", now.0.name(), now.1, unix_ms());
                    last = Some(now);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        #[test]
        fn a_step_is_seen_by_every_instance_process_within_the_poll_interval() {
            let bed = bed!("propagate");
            let (fleet, mut c) = fresh(&bed, "ctl_propagate");
            let poll = Duration::from_millis(250);
            let mut instances = Instances::start(&bed.src, "ctl_propagate", 3, poll, false);
            let status = fleet.status(&mut c).unwrap();
            assert_eq!(status.live().count(), 3, "{status:?}");
            let mut delays = Vec::new();
            for (dir, epoch) in [(Direction::Advance, 2), (Direction::Advance, 3), (Direction::Retreat, 4)] {
                let stepped = step(&fleet, &mut c, dir).unwrap();
                let at = unix_ms();
                assert_eq!(stepped.epoch, epoch);
                for i in 0..3 {
                    let a = instances.wait_applied(i, Some(epoch), 60);
                    assert_eq!(a.pattern, stepped.to.name());
                    delays.push(a.at_ms.saturating_sub(at));
                }
            }
            delays.sort();
            println!(
                "PROPAGATION {:?} poll {} ms, 3 processes, 3 steps: median {} ms, max {} ms",
                D, poll.as_millis(), delays[delays.len() / 2], delays[delays.len() - 1]
            );
            // Every instance acknowledges with its heartbeat.
            wait_until(60, "every instance acknowledges epoch 4", || {
                fleet.status(&mut c).unwrap().lagging().count() == 0
            });
        }

        #[test]
        fn with_notify_a_step_is_seen_without_waiting_for_the_poll() {
            let bed = bed!("notify");
            if D != Dialect::Postgres {
                return; // LISTEN/NOTIFY is PostgreSQL's.
            }
            let (fleet, mut c) = fresh(&bed, "ctl_notify");
            // A poll interval far longer than the deadline below: only a notification can
            // bring the step in time.
            let mut instances = Instances::start(&bed.src, "ctl_notify", 2, Duration::from_secs(600), true);
            let mut delays = Vec::new();
            for (dir, epoch) in [(Direction::Advance, 2), (Direction::Retreat, 3), (Direction::Advance, 4)] {
                // The barrier: the acknowledgement of the last step is the heartbeat written
                // right after it was applied.
                let stepped = fleet
                    .step(&mut c, dir, &mut NoGates, &StepOptions::new().wait(Duration::from_secs(60)))
                    .unwrap();
                let at = unix_ms();
                for i in 0..2 {
                    let a = instances.wait_applied(i, Some(epoch), 60);
                    assert_eq!(a.pattern, stepped.to.name());
                    delays.push(a.at_ms.saturating_sub(at));
                }
            }
            delays.sort();
            println!(
                "PROPAGATION {:?} NOTIFY (poll 600 s), 2 processes, 3 steps: median {} ms, max {} ms",
                D, delays[delays.len() / 2], delays[delays.len() - 1]
            );
        }

        #[test]
        fn a_stopped_instance_holds_the_step_until_resumed_or_its_heartbeat_expires() {
            let bed = bed!("sigstop");
            let (fleet, mut c) = fresh(&bed, "ctl_sigstop");
            let mut instances = Instances::start(&bed.src, "ctl_sigstop", 2, Duration::from_millis(100), false);
            wait_until(60, "both acknowledge", || fleet.status(&mut c).unwrap().lagging().count() == 0);
            instances.signal(1, "-STOP");
            // It acknowledged epoch 1 before it stopped: this step goes; the next one waits
            // for it.
            assert_eq!(step(&fleet, &mut c, Direction::Advance).unwrap().epoch, 2);
            instances.wait_applied(0, Some(2), 60);
            let id0 = instances.ids[0].clone();
            wait_until(60, "instance 0 acknowledges epoch 2", || {
                fleet.status(&mut c).unwrap().instances.iter().any(|i| i.record.instance_id == id0 && i.acknowledged)
            });
            let patient = fleet.clone().heartbeat_limit(Duration::from_secs(3600));
            let e = patient
                .step(&mut c, Direction::Advance, &mut NoGates, &StepOptions::new())
                .unwrap_err();
            match &e {
                Error::InstancesLag { epoch, lagging, .. } => {
                    assert_eq!(*epoch, 2);
                    assert_eq!(lagging.len(), 1, "{e}");
                    assert!(lagging[0].contains(&instances.ids[1]), "{e}");
                    assert!(lagging[0].contains(&format!("pid {}", instances.pid(1))), "{e}");
                }
                other => panic!("expected InstancesLag, got {other}"),
            }
            assert!(e.to_string().contains("nothing was changed"), "{e}");
            assert_eq!(fleet.phase(&mut c).unwrap().epoch, 2, "refused: nothing changed");
            // Waiting: it goes through once the instance is resumed.
            let waiter = {
                let (patient, url) = (patient.clone(), bed.src.clone());
                std::thread::spawn(move || {
                    let mut c: Conn = open(&url);
                    patient.step(&mut c, Direction::Advance, &mut NoGates, &StepOptions::new().wait(Duration::from_secs(120)))
                })
            };
            std::thread::sleep(Duration::from_millis(300));
            assert!(!waiter.is_finished(), "the step waits for the stopped instance");
            instances.signal(1, "-CONT");
            let stepped = waiter.join().unwrap().unwrap();
            assert_eq!((stepped.to, stepped.epoch), (Pattern::DstFirst, 3));
            instances.wait_applied(1, Some(3), 60);
            // Stopped again: it counts as gone once its heartbeat is older than the limit.
            wait_until(60, "both acknowledge epoch 3", || fleet.status(&mut c).unwrap().lagging().count() == 0);
            instances.signal(1, "-STOP");
            assert_eq!(step(&fleet, &mut c, Direction::Retreat).unwrap().epoch, 4);
            let brief = fleet.clone().heartbeat_limit(Duration::from_secs(2));
            let stepped = brief
                .step(&mut c, Direction::Retreat, &mut NoGates, &StepOptions::new().wait(Duration::from_secs(120)))
                .unwrap();
            assert_eq!((stepped.to, stepped.epoch), (Pattern::SrcOnly, 5));
            let status = brief.status(&mut c).unwrap();
            let gone = status.instances.iter().find(|i| i.record.instance_id == instances.ids[1]).unwrap();
            assert!(!gone.live && !gone.acknowledged, "{gone}");
            assert!(gone.to_string().contains("gone"), "{gone}");
        }

        #[test]
        fn an_instance_started_mid_migration_starts_in_the_stored_phase() {
            let bed = bed!("restart");
            let (fleet, mut c) = fresh(&bed, "ctl_restart");
            step(&fleet, &mut c, Direction::Advance).unwrap();
            step(&fleet, &mut c, Direction::Advance).unwrap();
            // In this process: the switch is at the stored phase when start returns.
            let control = Control::builder::<Conn>(bed.src.clone(), "ctl_restart").start().unwrap();
            assert_eq!(control.switch().get(), Pattern::DstFirst);
            assert_eq!(control.status().epoch, 3);
            drop(control);
            // A process: its first line is the stored phase.
            let mut instances = Instances::start(&bed.src, "ctl_restart", 1, Duration::from_millis(200), false);
            let first = instances.wait_applied(0, None, 60);
            assert_eq!((first.pattern.as_str(), first.epoch), ("dst_first", 3));
            // Killed and started again (the same id): still the stored phase.
            drop(instances);
            let mut again = Instances::start(&bed.src, "ctl_restart", 1, Duration::from_millis(200), false);
            assert_eq!(again.wait_applied(0, None, 60).pattern, "dst_first");
            // Unknown migration, unreachable database: clear errors, nothing started.
            let e = Control::builder::<Conn>(bed.src.clone(), "ctl_restart_nosuch").start().unwrap_err();
            assert!(matches!(e, Error::UnknownMigration { .. }) && e.to_string().contains("ctl_restart_nosuch"), "{e}");
        }

        /// A gate that waits until both steppers reached it: both read the same epoch.
        struct Rendezvous(Arc<Barrier>);
        impl Gate for Rendezvous {
            fn check(&mut self, _: Pattern, _: Pattern) -> diesel_rw::Result<Vec<Refusal>> {
                self.0.wait();
                Ok(Vec::new())
            }
        }

        #[test]
        fn of_two_concurrent_steps_exactly_one_wins() {
            let bed = bed!("race");
            let (fleet, mut c) = fresh(&bed, "ctl_race");
            let barrier = Arc::new(Barrier::new(2));
            let threads: Vec<_> = (0..2)
                .map(|i| {
                    let (fleet, url, barrier) = (fleet.clone(), bed.src.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut c: Conn = open(&url);
                        fleet.step(&mut c, Direction::Advance, &mut Rendezvous(barrier), &StepOptions::new().by(format!("operator-{i}")))
                    })
                })
                .collect();
            let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(won.len(), 1, "{results:?}");
            assert_eq!((won[0].to, won[0].epoch), (Pattern::SrcFirst, 2));
            let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
            match lost {
                Error::StepConflict { expected_epoch: 1, found_epoch: 2, found: Pattern::SrcFirst, .. } => {}
                other => panic!("expected StepConflict, got {other}"),
            }
            assert!(lost.to_string().contains("another step came first"), "{lost}");
            assert_eq!(fleet.phase(&mut c).unwrap().epoch, 2);
            assert_eq!(fleet.log(&mut c, 10).unwrap().len(), 1, "one step logged");
        }

        #[test]
        fn the_switch_of_an_instance_refuses_local_steps_and_reports_an_unreadable_table() {
            let bed = bed!("unreadable");
            let name = "ctl_unreadable";
            // Its own control table, so that renaming it disturbs no other test.
            let tables = diesel_rw::migrate::control::ControlTables::named("ctl_unreadable_control").unwrap();
            let mut c: Conn = open(&bed.src);
            for t in [tables.control(), tables.instance(), tables.log(), "ctl_unreadable_moved"] {
                c.batch_execute(&format!("DROP TABLE IF EXISTS {t}")).unwrap();
            }
            let fleet = Fleet::new(name).tables(tables.clone());
            fleet.init(&mut c, Pattern::SrcFirst).unwrap();
            let control = Control::builder::<Conn>(bed.src.clone(), name)
                .control_table(tables.control())
                .unwrap()
                .poll_interval(Duration::from_millis(50))
                .start()
                .unwrap();
            let switch = control.switch();
            assert!(switch.is_controlled());
            let e = switch.advance().unwrap_err();
            assert!(matches!(e, Error::PatternControlled { .. }), "{e}");
            assert!(e.to_string().contains("ctl_unreadable_control"), "{e}");
            assert_eq!(switch.force(Pattern::DstOnly), Pattern::SrcFirst, "force changes nothing");
            assert_eq!(switch.get(), Pattern::SrcFirst);
            // The table goes away: the instance keeps its phase and says so.
            c.batch_execute(&format!("ALTER TABLE {} RENAME TO ctl_unreadable_moved", tables.control())).unwrap();
            wait_until(60, "the status reports the failed reads", || control.status().failures >= 2);
            let status = control.status();
            assert!(status.is_stale() && status.last_error.is_some(), "{status:?}");
            assert_eq!(switch.get(), Pattern::SrcFirst, "the last phase seen is kept");
            assert!(format!("{:?}", switch.control_status().unwrap()).contains("failures"));
            // Back: the failures clear.
            c.batch_execute(&format!("ALTER TABLE ctl_unreadable_moved RENAME TO {}", tables.control())).unwrap();
            wait_until(60, "the status recovers", || control.status().failures == 0);
            assert!(control.status().last_read_age < Duration::from_secs(60));
            drop(control);
            // A clean stop removes the instance's row.
            assert!(fleet.status(&mut c).unwrap().instances.is_empty());
            // Bad names are refused.
            assert!(matches!(diesel_rw::migrate::control::ControlTables::named("bad name; drop"), Err(Error::Config(_))));
        }

        #[test]
        fn a_double_write_pool_follows_the_phase_in_the_table() {
            let bed = bed!("pool");
            let (fleet, mut c) = fresh(&bed, "ctl_pool");
            bed.reset::<Conn>(&[]);
            let t = bed.table.clone();
            bed.both::<Conn>(&plain_table_sql(&t));
            let control = Control::builder::<Conn>(bed.src.clone(), "ctl_pool")
                .poll_interval(Duration::from_millis(50))
                .start()
                .unwrap();
            let pool = DoubleWrite::<Conn>::builder()
                .source(bed.src.clone())
                .destination(bed.dst.clone())
                .pattern(control.switch())
                .build()
                .unwrap();
            let insert = |id: i64| {
                pool.get().unwrap().batch_execute(&format!("INSERT INTO {t} (id, v, n) VALUES ({id}, 'x', {id})")).unwrap();
            };
            insert(1);
            step(&fleet, &mut c, Direction::Advance).unwrap();
            wait_until(60, "the pool's switch applies src_first", || pool.switch().get() == Pattern::SrcFirst);
            insert(2);
            let (mut s, mut d): (Conn, Conn) = (open(&bed.src), open(&bed.dst));
            assert_eq!(count(&mut s, &t), 2);
            assert_eq!(count(&mut d, &t), 1, "only the write under src_first reached the destination");
            bed.reset::<Conn>(&[]);
        }

        #[test]
        fn each_gate_refuses_with_its_reason_and_a_forced_step_is_recorded() {
            let bed = bed!("gates");
            let (fleet, mut c) = fresh(&bed, "ctl_gates");
            bed.reset::<Conn>(&[]);
            let t = bed.table.clone();
            let mut src: Conn = open(&bed.src);
            let mut dst: Conn = open(&bed.dst);
            let serial = match D {
                Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
                Dialect::Mysql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
                _ => "INTEGER PRIMARY KEY AUTOINCREMENT",
            };
            src.batch_execute(&format!("CREATE TABLE {t} (id {serial}, v VARCHAR(100) NOT NULL, n BIGINT)")).unwrap();
            dst.batch_execute(&format!("CREATE TABLE {t} (id {serial}, v VARCHAR(100) NOT NULL)")).unwrap();
            for i in 0..20 {
                src.batch_execute(&format!("INSERT INTO {t} (v, n) VALUES ('row{i}', {i})")).unwrap();
            }
            // What earlier runs of this test recorded about the table.
            diesel_rw::migrate::verify_runs::create_table(&mut src).unwrap();
            diesel_rw::migrate::journal::create_table(&mut src).unwrap();
            src.batch_execute(&format!(
                "DELETE FROM diesel_rw_verify_run WHERE table_name LIKE '%{t}'; \
                 DELETE FROM diesel_rw_journal WHERE table_name = '{t}'"
            ))
            .unwrap();
            let gates = || CutoverGates::new(open(&bed.src), open(&bed.dst), [t.as_str()]);
            let refused = |g: &mut CutoverGates<Conn>, c: &mut Conn| -> (String, String) {
                match fleet.step(c, Direction::Advance, g, &StepOptions::new()).unwrap_err() {
                    Error::GateRefused { gate, reason, .. } => (gate, reason),
                    other => panic!("expected GateRefused, got {other}"),
                }
            };
            // To SrcFirst: the destination lacks a column.
            let (gate, reason) = refused(&mut gates(), &mut c);
            assert_eq!(gate, "destination schema");
            assert!(reason.contains("`n`"), "{reason}");
            assert_eq!(fleet.phase(&mut c).unwrap().pattern, Pattern::SrcOnly);
            dst.batch_execute(&format!("ALTER TABLE {t} ADD COLUMN n BIGINT")).unwrap();
            fleet.step(&mut c, Direction::Advance, &mut gates(), &StepOptions::new()).unwrap();
            // To DstFirst: backfill, verify, counters.
            let (gate, reason) = refused(&mut gates(), &mut c);
            assert_eq!(gate, "backfill");
            assert!(reason.contains("never run"), "{reason}");
            assert!(reason.contains("verify: ") && reason.contains("never verified"), "{reason}");
            Backfill::new(t.as_str()).run(&mut src, &mut dst).unwrap();
            let (gate, reason) = refused(&mut gates(), &mut c);
            assert_eq!(gate, "verify", "{reason}");
            // A verify that finds a difference keeps it closed.
            dst.batch_execute(&format!("UPDATE {t} SET v = 'changed' WHERE n = 3")).unwrap();
            let verify = Verify::new(t.as_str())
                .recheck_delay(Duration::from_millis(10))
                .record_to(Side::Source)
                .pattern(Pattern::SrcFirst);
            assert!(!verify.run(&mut src, &mut dst).unwrap().is_clean());
            let (gate, reason) = refused(&mut gates(), &mut c);
            assert_eq!(gate, "verify");
            assert!(reason.contains("1 difference(s)"), "{reason}");
            dst.batch_execute(&format!("UPDATE {t} SET v = 'row3' WHERE n = 3")).unwrap();
            assert!(verify.run(&mut src, &mut dst).unwrap().is_clean());
            // A pending journal entry of the table keeps it closed until it is done.
            src.batch_execute(&format!(
                "INSERT INTO diesel_rw_journal (table_name, kind, side, pattern, in_transaction, statement, error) \
                 VALUES ('{t}', 'write_failed', 'destination', 'src_first', 0, 'UPDATE {t} SET v = v', 'refused')"
            ))
            .unwrap();
            let (gate, reason) = refused(&mut gates().key_counters(false), &mut c);
            assert_eq!(gate, "journal", "{reason}");
            assert!(reason.contains("1 pending journal entry"), "{reason}");
            let ids: Vec<i64> = diesel_rw::migrate::journal::rows(&mut src, diesel_rw::migrate::journal::Which::PendingFor(&t))
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect();
            diesel_rw::migrate::journal::mark_done(&mut src, &ids).unwrap();
            if D == Dialect::Postgres {
                // The destination's sequence is behind (its rows came with their keys; on
                // MariaDB and SQLite an explicit key moves the counter).
                let (gate, reason) = refused(&mut gates(), &mut c);
                assert_eq!(gate, "key counters", "{reason}");
                assert!(reason.contains("source 20"), "{reason}");
            }
            // A verify older than the limit keeps it closed.
            std::thread::sleep(Duration::from_millis(20));
            let e = fleet
                .step(&mut c, Direction::Advance, &mut gates().verify_max_age(Duration::from_millis(1)).key_counters(false), &StepOptions::new())
                .unwrap_err();
            assert!(e.to_string().contains("over the limit"), "a verify too old: {e}");
            fleet.step(&mut c, Direction::Advance, &mut gates().key_counters(D != Dialect::Postgres), &StepOptions::new()).unwrap();
            assert_eq!(fleet.phase(&mut c).unwrap().pattern, Pattern::DstFirst);
            // To DstOnly: a clean verify under DstFirst is required; forced past it, recorded.
            let (gate, reason) = refused(&mut gates(), &mut c);
            assert_eq!(gate, "verify");
            assert!(reason.contains("under dst_first"), "{reason}");
            let e = fleet
                .step(&mut c, Direction::Advance, &mut gates(), &StepOptions::new().force("  "))
                .unwrap_err();
            assert!(matches!(e, Error::Config(_)), "a force needs a reason: {e}");
            let stepped = fleet
                .step(&mut c, Direction::Advance, &mut gates(), &StepOptions::new().force("verified by hand").by("ops-test"))
                .unwrap();
            assert_eq!(stepped.to, Pattern::DstOnly);
            assert_eq!(stepped.overridden.len(), 1);
            let phase = fleet.phase(&mut c).unwrap();
            assert!(phase.forced && phase.reason.contains("verified by hand") && phase.reason.contains("forced past: verify"), "{phase:?}");
            let log = fleet.log(&mut c, 10).unwrap();
            assert_eq!(log.len(), 3);
            assert!(log[0].forced && log[0].changed_by == "ops-test" && log[0].to == Pattern::DstOnly, "{:?}", log[0]);
            assert!(log[1..].iter().all(|s| !s.forced), "{log:?}");
            // Stepping back is always allowed.
            fleet.step(&mut c, Direction::Retreat, &mut gates(), &StepOptions::new()).unwrap();
            assert_eq!(fleet.phase(&mut c).unwrap().pattern, Pattern::DstFirst);
            bed.reset::<Conn>(&[]);
        }
    };
}
