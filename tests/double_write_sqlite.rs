//! The double-write suite on SQLite: two files per test, no server.
#![cfg(feature = "sqlite")]

mod common;
#[macro_use]
#[path = "common/double_write.rs"]
mod dw;

#[macro_use]
#[path = "common/dw_contract.rs"]
mod contract;

double_write_suite!(sqlite);
dw_contract_suite!(sqlite);

/// SQLite has no transient statement errors to retry, but a destination that cannot be
/// opened yet is a connect failure, which provably sent nothing: it is retried until it opens.
#[test]
fn retry_reconnects_a_destination_that_becomes_reachable() {
    let bed = bed!("dw_retry_reconnects_sqlite");
    let destination = backend::unreachable_destination(&bed);
    let retry = Retry::attempts(100)
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(20))
        .max_elapsed(Duration::from_secs(10));
    let pool = builder(&bed, Pattern::SrcFirst)
        .destination(destination.clone())
        .retry(retry)
        .build()
        .unwrap();
    let mut conn = pool.get().unwrap();
    assert!(!conn.is_connected(Side::Destination));
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        backend::make_reachable(&destination);
    });
    insert(&mut conn, &bed.tag).unwrap();
    opener.join().unwrap();
    let metrics = pool.metrics();
    assert!(metrics.destination.retries >= 1, "{metrics:?}");
    assert_eq!(metrics.source.retries, 0);
    let on_destination: Vec<String> = dw_items::table
        .filter(dw_items::tag.eq(&bed.tag))
        .select(dw_items::node)
        .load(&mut backend::direct(&backend::unreachable_destination(
            &bed,
        )))
        .unwrap();
    assert_eq!(on_destination, ["destination"]);
    assert_eq!(nodes(&bed, Side::Source, &bed.tag), ["source"]);
    assert!(journal(&pool).is_empty());
}

#[test]
fn connection_strings_say_what_is_wrong() {
    let bed = bed!("dw_connection_strings");
    let open = |spec: String| DoubleWriteConnection::<Conn>::establish(&spec).map(|_| ());
    let err = open(format!("source={} destination={}", bed.source, bed.source)).unwrap_err();
    assert!(err.to_string().contains("same URL"), "{err}");
    let err = open(format!("source={} target={}", bed.source, bed.destination)).unwrap_err();
    assert!(err.to_string().contains("`target="), "{err}");
    let err = open("shared=no-such-context".into()).unwrap_err();
    assert!(
        err.to_string().contains("DoubleWriteBuilder::register"),
        "{err}"
    );
    // A plain URL is a source alone: writes go there, and a pattern that needs a destination
    // is refused with a message that says why.
    let mut alone = DoubleWriteConnection::<Conn>::establish(&bed.source).unwrap();
    insert(&mut alone, &bed.tag).unwrap();
    alone.switch().advance().unwrap();
    let err = insert(&mut alone, &bed.tag).unwrap_err().to_string();
    assert!(err.contains("needs a destination"), "{err}");
    assert_eq!(nodes(&bed, Side::Source, &bed.tag).len(), 1);
    // The builder validates too.
    let err = DoubleWrite::<Conn>::builder()
        .source(&bed.source)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains(".destination(url)"), "{err}");
}
