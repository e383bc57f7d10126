//! The CLI suite, per backend: `cli_suite!(Conn, bed_fn)`.

macro_rules! cli_suite {
    ($conn:ty, $bed:path) => {
        use std::collections::HashMap;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        use std::time::Duration;

        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        use diesel_rw::double_write::{DoubleWrite, Pattern};
        use diesel_rw::migrate::control::{Control, Fleet};
        use diesel_rw::migrate::{Dialect, MigrateConnection};

        use common::*;

        type Conn = $conn;
        const D: Dialect = <$conn as MigrateConnection>::DIALECT;

        macro_rules! bed {
            ($name:literal) => {
                match $bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        fn open(url: &str) -> Conn {
            let mut c = Conn::establish(url).unwrap();
            if D == Dialect::Sqlite {
                c.batch_execute("PRAGMA busy_timeout = 30000").unwrap();
            }
            c
        }

        /// Fresh tables `t` on both sides and a fresh migration `t` (its control rows,
        /// checkpoints, verify runs and journal entries of earlier runs removed).
        fn fresh(bed: &Bed, t: &str, create: &str) {
            for url in [&bed.src, &bed.dst] {
                let mut c = open(url);
                c.batch_execute(&format!("DROP TABLE IF EXISTS {t}"))
                    .unwrap();
                c.batch_execute(&create.replace("{t}", t)).unwrap();
                for cleanup in [
                    format!("DELETE FROM diesel_rw_control WHERE migration = '{t}'"),
                    format!("DELETE FROM diesel_rw_control_instance WHERE migration = '{t}'"),
                    format!("DELETE FROM diesel_rw_control_log WHERE migration = '{t}'"),
                    format!("DELETE FROM diesel_rw_backfill_checkpoint WHERE name LIKE '%{t}'"),
                    format!("DELETE FROM diesel_rw_verify_run WHERE table_name LIKE '%{t}'"),
                    format!("DELETE FROM diesel_rw_journal WHERE table_name = '{t}'"),
                ] {
                    let _ = c.batch_execute(&cleanup);
                }
            }
        }

        fn texts(url: &str, sql: &str) -> Vec<String> {
            open(url)
                .query_texts(sql, &[])
                .unwrap()
                .into_iter()
                .flatten()
                .collect()
        }

        #[test]
        fn a_full_walk_driven_from_the_cli_under_8_writer_threads_loses_no_write() {
            let bed = bed!("walk");
            let t = "cli_walk";
            fresh(
                &bed,
                t,
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v VARCHAR(200) NOT NULL)",
            );
            let m = ["-m", t, "-t", t];
            let run = |args: &[&str]| {
                let mut all: Vec<&str> = m.to_vec();
                all.extend_from_slice(args);
                let o = cli(&bed, &all);
                let (code, out, err) = parts(&o);
                assert_eq!(
                    code, 0,
                    "diesel-rw migrate {all:?}: stdout `{out}` stderr `{err}`"
                );
                out
            };
            run(&["init"]);
            // The service: one instance following the table, 8 threads writing through the
            // double write.
            let control = Control::builder::<Conn>(bed.src.clone(), t)
                .poll_interval(Duration::from_millis(100))
                .start()
                .unwrap();
            let pool = DoubleWrite::<Conn>::builder()
                .source(bed.src.clone())
                .destination(bed.dst.clone())
                .pattern(control.switch())
                .max_size(10)
                // SQLite: each writer waits for the others' writes to the file.
                .on_connect(|_, c| {
                    if D == Dialect::Sqlite {
                        c.batch_execute("PRAGMA busy_timeout = 30000")
                    } else {
                        Ok(())
                    }
                })
                .build()
                .unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let written: Arc<Mutex<HashMap<i64, String>>> = Arc::default();
            let errors = Arc::new(AtomicU64::new(0));
            let writers: Vec<_> = (0..8i64)
                .map(|w| {
                    let (pool, stop, written, errors) =
                        (pool.clone(), stop.clone(), written.clone(), errors.clone());
                    std::thread::spawn(move || {
                        let mut i = 0i64;
                        while !stop.load(Ordering::Relaxed) {
                            i += 1;
                            let id = w * 1_000_000 + i;
                            let mut c = pool.get().unwrap();
                            let (sql, key, value) = if i % 3 == 0 {
                                // Update one of this thread's earlier rows (an insert's:
                                // iterations not divisible by 3).
                                let k = if (i / 3) % 3 == 0 { i / 3 - 1 } else { i / 3 };
                                let old = w * 1_000_000 + k;
                                let value = format!("u{i}");
                                (
                                    format!("UPDATE {t} SET v = '{value}' WHERE id = {old}"),
                                    old,
                                    value,
                                )
                            } else {
                                let value = format!("i{i}");
                                (
                                    format!("INSERT INTO {t} (id, v) VALUES ({id}, '{value}')"),
                                    id,
                                    value,
                                )
                            };
                            match c.batch_execute(&sql) {
                                Ok(()) => {
                                    written.lock().unwrap().insert(key, value);
                                }
                                Err(e) => {
                                    eprintln!("write failed: {e}");
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    })
                })
                .collect();
            let wait_rows = |n: usize| {
                wait_until(120, "the writers write", || {
                    written.lock().unwrap().len() >= n
                })
            };
            wait_rows(200);
            run(&["advance", "--wait", "60"]);
            wait_until(60, "the instance applies src_first", || {
                control.switch().get() == Pattern::SrcFirst
            });
            let before = written.lock().unwrap().len();
            wait_rows(before + 200);
            let out = run(&["backfill"]);
            assert!(out.contains("done"), "{out}");
            let out = run(&["verify"]);
            assert!(out.contains("clean"), "{out}");
            run(&["advance", "--wait", "60", "--no-key-counters"]);
            wait_until(60, "the instance applies dst_first", || {
                control.switch().get() == Pattern::DstFirst
            });
            let before = written.lock().unwrap().len();
            wait_rows(before + 200);
            let v = json(&cli(&bed, &[&m[..], &["--json", "verify"]].concat()));
            assert_eq!(v["clean"], true, "{v}");
            assert_eq!(v["verify"][0]["authoritative"], "destination", "{v}");
            run(&["advance", "--wait", "60"]);
            wait_until(60, "the instance applies dst_only", || {
                control.switch().get() == Pattern::DstOnly
            });
            let before = written.lock().unwrap().len();
            wait_rows(before + 100);
            stop.store(true, Ordering::Relaxed);
            for w in writers {
                w.join().unwrap();
            }
            assert_eq!(errors.load(Ordering::Relaxed), 0, "no write failed");
            // No write lost: every write the service was told applied is on the destination
            // with its last value.
            let rows: HashMap<i64, String> = texts(
                &bed.dst,
                &format!(
                    "SELECT {} AS value FROM {t}",
                    D.json_array(&[D.to_text("id"), D.to_text("v")])
                ),
            )
            .iter()
            .map(|j| {
                let v: serde_json::Value = serde_json::from_str(j).unwrap();
                (
                    v[0].as_str().unwrap().parse().unwrap(),
                    v[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
            let written = written.lock().unwrap();
            let lost: Vec<_> = written
                .iter()
                .filter(|(k, v)| rows.get(k) != Some(v))
                .take(5)
                .collect();
            assert!(
                lost.is_empty(),
                "{} of {} writes lost or stale on the destination, e.g. {lost:?}",
                written
                    .iter()
                    .filter(|(k, v)| rows.get(k) != Some(v))
                    .count(),
                written.len()
            );
            println!(
                "WALK {D:?}: {} rows written by 8 threads across src_only -> dst_only, 0 lost",
                written.len()
            );
            // The record of the walk.
            let log = Fleet::new(t).log(&mut open(&bed.src), 10).unwrap();
            assert_eq!(
                log.iter().map(|s| s.to).collect::<Vec<_>>(),
                [Pattern::DstOnly, Pattern::DstFirst, Pattern::SrcFirst]
            );
        }

        #[test]
        fn exit_codes_json_and_no_password_printed() {
            let bed = bed!("codes");
            let t = "cli_codes";
            fresh(
                &bed,
                t,
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v VARCHAR(200) NOT NULL)",
            );
            let code = |args: &[&str]| parts(&cli(&bed, args)).0;
            // Usage: no migration name, a bad table, --force without --reason.
            assert_eq!(code(&["status"]), 2);
            assert_eq!(code(&["-m", t, "-t", ":x", "status"]), 2);
            assert_eq!(code(&["-m", t, "-t", t, "advance", "--force"]), 2);
            // An unknown migration.
            let (c, _, err) = parts(&cli(&bed, &["-m", "cli_nosuch", "status"]));
            assert_eq!(c, 1);
            assert!(
                err.contains("no migration `cli_nosuch`") && err.contains("migrate init"),
                "{err}"
            );
            assert_eq!(code(&["-m", t, "init"]), 0);
            let m = ["-m", t, "-t", t, "--json"];
            let with = |args: &[&str]| cli(&bed, &[&m[..], args].concat());
            // A gate: the destination is not backfilled (to src_first only the schema counts,
            // and it is there).
            assert_eq!(parts(&with(&["advance"])).0, 0);
            let o = with(&["advance"]);
            assert_eq!(parts(&o).0, 3);
            let j = json(&o);
            assert_eq!(j["error"], "gate_refused", "{j}");
            assert!(j["message"].as_str().unwrap().contains("backfill"), "{j}");
            // Forced, with a reason: recorded.
            let o = with(&[
                "advance",
                "--force",
                "--reason",
                "test: forced past the gates",
            ]);
            assert_eq!(parts(&o).0, 0, "{:?}", parts(&o));
            let j = json(&o);
            assert_eq!(j["to"], "dst_first");
            assert!(!j["forced_past"].as_array().unwrap().is_empty(), "{j}");
            let st = json(&with(&["status"]));
            assert_eq!(
                (st["phase"].as_str(), st["forced"].as_bool()),
                (Some("dst_first"), Some(true)),
                "{st}"
            );
            assert!(
                st["reason"].as_str().unwrap().contains("forced past"),
                "{st}"
            );
            // Instances lag: one that polls every 10 minutes does not apply the next step.
            let slow = Control::builder::<Conn>(bed.src.clone(), t)
                .poll_interval(Duration::from_secs(600))
                .listen(false)
                .start()
                .unwrap();
            assert_eq!(parts(&with(&["retreat"])).0, 0);
            let o = with(&["retreat"]);
            assert_eq!(parts(&o).0, 4, "{:?}", parts(&o));
            let j = json(&o);
            assert_eq!(j["error"], "instances_lag");
            assert!(
                j["message"].as_str().unwrap().contains(slow.instance_id()),
                "{j}"
            );
            drop(slow); // a clean stop: no longer an instance
            assert_eq!(parts(&with(&["retreat"])).0, 0);
            // Differences: exit 5, with the keys; repair --dry-run lists, repair converges.
            {
                let mut s = open(&bed.src);
                s.batch_execute(&format!(
                    "INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b')"
                ))
                .unwrap();
                open(&bed.dst)
                    .batch_execute(&format!(
                        "INSERT INTO {t} (id, v) VALUES (2, 'B'), (3, 'c')"
                    ))
                    .unwrap();
            }
            let o = with(&["verify"]);
            assert_eq!(parts(&o).0, 5);
            let j = json(&o);
            assert_eq!(
                j["verify"][0]["missing_on_destination"],
                serde_json::json!([["1"]]),
                "{j}"
            );
            assert_eq!(
                j["verify"][0]["missing_on_source"],
                serde_json::json!([["3"]]),
                "{j}"
            );
            assert_eq!(
                j["verify"][0]["different"],
                serde_json::json!([["2"]]),
                "{j}"
            );
            let o = with(&["repair", "--dry-run"]);
            assert_eq!(parts(&o).0, 5);
            assert_eq!(
                json(&o)["repair"][0]["actions"].as_array().unwrap().len(),
                3
            );
            assert_eq!(
                texts(
                    &bed.dst,
                    &format!("SELECT {} AS value FROM {t} WHERE id = 2", D.to_text("v"))
                ),
                ["B"],
                "dry run writes nothing"
            );
            assert_eq!(parts(&with(&["repair"])).0, 0);
            assert_eq!(parts(&with(&["verify"])).0, 0);
            // Text output too, and the journal command.
            let (c, out, _) = parts(&cli(&bed, &["-m", t, "-t", t, "status"]));
            assert_eq!(c, 0);
            assert!(
                out.contains(&format!("migration {t}: src_only")) && out.contains("last verify"),
                "{out}"
            );
            assert_eq!(parts(&cli(&bed, &["-m", t, "journal"])).0, 0);
            // A config file instead of flags and the environment; unknown keys refused.
            let dir = std::env::temp_dir().join(format!("diesel-rw-cli-config-{}-{:?}", std::process::id(), D));
            std::fs::create_dir_all(&dir).unwrap();
            let config = dir.join("migration.toml");
            std::fs::write(
                &config,
                format!("source = {:?}\ndestination = {:?}\nmigration = {t:?}\ntables = [{t:?}]\nheartbeat_limit_secs = 30\n", bed.src, bed.dst),
            )
            .unwrap();
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_diesel-rw"))
                .args(["migrate", "--config", config.to_str().unwrap(), "--json", "status"])
                .env_remove("DATABASE_URL")
                .env_remove("DESTINATION_DATABASE_URL")
                .env_remove("DIESEL_RW_MIGRATION")
                .output()
                .unwrap();
            let st = json(&o);
            assert_eq!((st["migration"].as_str(), st["heartbeat_limit_secs"].as_u64()), (Some(t), Some(30)), "{st}");
            // The destination comes from the file too: verify needs it.
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_diesel-rw"))
                .args(["migrate", "--config", config.to_str().unwrap(), "verify"])
                .env_remove("DATABASE_URL")
                .env_remove("DESTINATION_DATABASE_URL")
                .env_remove("DIESEL_RW_MIGRATION")
                .output()
                .unwrap();
            assert_eq!(parts(&o).0, 0, "{:?}", parts(&o));
            std::fs::write(&config, "source = \"x\"\nsourec = \"typo\"\n").unwrap();
            let (c, _, err) = parts(&cli(&bed, &["--config", config.to_str().unwrap(), "-m", t, "status"]));
            assert_eq!(c, 2);
            assert!(err.contains("sourec"), "{err}");
            let _ = std::fs::remove_dir_all(&dir);
            // A password is never printed, in any error.
            if D != Dialect::Sqlite {
                let url = if D == Dialect::Postgres {
                    "postgres://diesel_rw:hunter2secret@127.0.0.1:1/diesel_rw"
                } else {
                    "mysql://diesel_rw:hunter2secret@127.0.0.1:1/diesel_rw"
                };
                for args in [
                    &["--source", url, "-m", t, "status"][..],
                    &["--source", url, "-m", t, "--json", "status"][..],
                ] {
                    let (c, out, err) = parts(&cli(&bed, args));
                    assert_eq!(c, 1, "{out}{err}");
                    assert!(
                        !out.contains("hunter2secret") && !err.contains("hunter2secret"),
                        "{out}{err}"
                    );
                }
                let (_, out, err) = parts(&cli(&bed, &["--source", url, "--help"]));
                assert!(
                    !out.contains("hunter2secret") && !err.contains("hunter2secret"),
                    "--help shows no env value"
                );
            }
        }
    };
}
