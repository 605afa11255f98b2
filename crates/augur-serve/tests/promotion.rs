//! Hot promotion: a new version is served without a restart (admin endpoint or store
//! watcher), in-flight requests finish on the old version, and every response names its
//! version.

use std::time::{Duration, Instant};

use augur_serve::{ModelSource, ServeConfig};
use serde_json::json;

use crate::support::*;

#[test]
fn admin_promotion_keeps_in_flight_requests_on_the_old_version() {
    let (store, dir) = store_with_v1("promote");
    let v1 = shipped();
    let cfg = ServeConfig {
        max_body_bytes: 64 << 20,
        max_latency: Duration::from_secs(60),
        ..config()
    };
    let source = ModelSource::Store {
        store: store.clone(),
        tag: "ford-price:latest".into(),
    };
    let s = TestServer::start(cfg, source);
    let a = s.addr;
    let r = post(a, "/predict", CAR);
    assert_eq!(r.model(), "ford-price:1");
    let price_v1: f64 = r.text().parse().unwrap();
    let admin = get(a, "/admin/model").json();
    assert_eq!(admin["model"], "ford-price:1");
    assert_eq!(admin["version"], 1);

    // Version 2 predicts twice the price.
    let v2 = store.save(scaled_model(2.0), Some("ford-price")).unwrap();
    assert_eq!(v2.tag(), "ford-price:2");

    // A long request is admitted (and scoring) on version 1...
    let long_rows = rows(LONG);
    let long_body = serde_json::to_string(&long_rows).unwrap();
    let long = std::thread::spawn(move || {
        let r = post(a, "/predict", &long_body);
        (r, Instant::now())
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.metric("augur_service_queue_wait_seconds_count") < 2.0 {
        assert!(Instant::now() < deadline, "the long request never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    // ...while version 2 is promoted.
    let p = post(a, "/admin/promote", "");
    let promoted_at = Instant::now();
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(
        p.json(),
        json!({"previous": "ford-price:1", "current": "ford-price:2", "changed": true})
    );
    let r = post(a, "/predict", CAR);
    assert_eq!(r.model(), "ford-price:2");
    let price_v2: f64 = r.text().parse().unwrap();
    assert!(
        (price_v2 / price_v1 - 2.0).abs() < 1e-3,
        "{price_v1} -> {price_v2}"
    );

    let (r, done_at) = long.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.model(),
        "ford-price:1",
        "in-flight request moved versions"
    );
    assert!(
        done_at > promoted_at,
        "the long request finished before the promotion; make it longer"
    );
    let got: Vec<f64> = serde_json::from_slice(&r.body).unwrap();
    for k in [0, LONG / 2, LONG - 1] {
        assert_eq!(got[k], expected(&v1, &long_rows[k].to_string()));
    }

    // Other endpoints follow the new version too.
    assert_eq!(
        get(a, "/v2/models/ford-price").json()["versions"],
        json!(["2"])
    );
    assert_eq!(get(a, "/v2/models/ford-price/versions/1/ready").status, 404);
    let m = s.metrics();
    assert_eq!(
        metric_value(
            &m,
            "augur_service_model_info{model=\"ford-price\",version=\"2\"}"
        ),
        1.0
    );
    assert!(!m.contains("augur_service_model_info{model=\"ford-price\",version=\"1\"}"));
    assert_eq!(
        metric_value(&m, "augur_service_model_promotions_total"),
        1.0
    );

    // Promoting what is served changes nothing; an explicit older tag rolls back.
    assert_eq!(post(a, "/admin/promote", "").json()["changed"], false);
    let back = post(a, "/admin/promote", r#"{"tag": "ford-price:1"}"#).json();
    assert_eq!(back["current"], "ford-price:1");
    assert_eq!(post(a, "/predict", CAR).model(), "ford-price:1");

    // Errors: unknown tag 404, bad tag 400, bad body 400.
    let r = post(a, "/admin/promote", r#"{"tag": "ford-price:9"}"#);
    assert_eq!(r.status, 404, "{}", r.text());
    let r = post(a, "/admin/promote", r#"{"tag": "bad name!"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(a, "/admin/promote", r#"{"tag": 3}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "tag");
    assert_eq!(post(a, "/predict", CAR).model(), "ford-price:1");
    drop(s);
    cleanup(&dir);
}

#[test]
fn the_store_watcher_promotes_new_versions() {
    let (store, dir) = store_with_v1("watch");
    let cfg = ServeConfig {
        watch_interval: Some(Duration::from_millis(50)),
        ..config()
    };
    let source = ModelSource::Store {
        store: store.clone(),
        tag: "ford-price".into(),
    };
    let s = TestServer::start(cfg, source);
    assert_eq!(post(s.addr, "/predict", CAR).model(), "ford-price:1");
    store.save(scaled_model(3.0), Some("ford-price")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = post(s.addr, "/predict", CAR);
        assert_eq!(r.status, 200);
        if r.model() == "ford-price:2" {
            break;
        }
        assert!(Instant::now() < deadline, "the watcher did not promote v2");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(get(s.addr, "/admin/model").json()["watching"] == true);
    drop(s);
    cleanup(&dir);
}

#[test]
fn admin_needs_the_token_when_one_is_set() {
    let (store, dir) = store_with_v1("token");
    let cfg = ServeConfig {
        admin_token: Some(augur_core::secret::Secret::new("s3cret")),
        ..config()
    };
    let s = TestServer::start(
        cfg,
        ModelSource::Store {
            store,
            tag: "ford-price:1".into(),
        },
    );
    let r = post(s.addr, "/admin/promote", "");
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "forbidden");
    let mut c = Conn::open(s.addr);
    let r = c.request(
        "GET",
        "/admin/model",
        &[("authorization", "Bearer wrong")],
        b"",
    );
    assert_eq!(r.status, 403);
    let r = c.request(
        "POST",
        "/admin/promote",
        &[("authorization", "Bearer s3cret")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["current"], "ford-price:1");
    drop(s);
    cleanup(&dir);
}

#[test]
fn promotion_by_tag_needs_a_store() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let r = post(s.addr, "/admin/promote", r#"{"tag": "ford-price:2"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not a model store")
    );
    // A loaded model can still be promoted through the library handle.
    let before: f64 = post(s.addr, "/predict", CAR).text().parse().unwrap();
    let p = s
        .handle
        .promote_model(std::sync::Arc::new(scaled_model(2.0)));
    assert!(p.changed);
    let r = post(s.addr, "/predict", CAR);
    assert_eq!(r.model(), "ford-price:1");
    let after: f64 = r.text().parse().unwrap();
    assert!((after / before - 2.0).abs() < 1e-3, "{before} -> {after}");
}

#[test]
fn promotion_refuses_other_inputs_and_worse_models_and_says_why() {
    let (store, dir) = store_with_v1("refuse");
    let source = ModelSource::Store {
        store: store.clone(),
        tag: "ford-price:1".into(),
    };
    let s = TestServer::start(config(), source);
    let a = s.addr;
    assert_eq!(
        store.save(houses_model(), None).unwrap().tag(),
        "ford-price:2"
    );
    assert_eq!(
        store.save(mae_scaled_model(1.10), None).unwrap().tag(),
        "ford-price:3"
    );
    let no_cv = edited_model(|d| d["meta"]["source"]["cv"] = serde_json::Value::Null);
    assert_eq!(store.save(no_cv, None).unwrap().tag(), "ford-price:4");
    assert_eq!(
        store.save(mae_scaled_model(1.015), None).unwrap().tag(),
        "ford-price:5"
    );

    // Other inputs: refused, even forced, and the reason names the fields.
    for body in [
        r#"{"tag": "ford-price:2"}"#,
        r#"{"tag": "ford-price:2", "force": true}"#,
    ] {
        let r = post(a, "/admin/promote", body);
        assert_eq!(r.status, 409, "{}", r.text());
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            e.contains("lacks mileage") && e.contains("wants houses"),
            "{e}"
        );
    }
    // 10 % worse: refused unless forced.
    let r = post(a, "/admin/promote", r#"{"tag": "ford-price:3"}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    let e = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("10.0 % worse") && e.contains("limit is 2.0 %"),
        "{e}"
    );
    // No cross-validated metrics: refused unless forced.
    let r = post(a, "/admin/promote", r#"{"tag": "ford-price:4"}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("no cross-validated MAE"), "{}", r.text());
    assert_eq!(post(a, "/predict", CAR).model(), "ford-price:1");
    let r = post(a, "/admin/promote", r#"{"force": "yes"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "force");

    // Within the margin: accepted; forced: accepted.
    let r = post(a, "/admin/promote", r#"{"tag": "ford-price:5"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        a,
        "/admin/promote",
        r#"{"tag": "ford-price:3", "force": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(post(a, "/predict", CAR).model(), "ford-price:3");
    drop(s);
    cleanup(&dir);
}

#[test]
fn the_watcher_follows_an_alias_and_skips_refused_versions() {
    let (store, dir) = store_with_v1("watch-alias");
    store.set_alias("ford-price@champion", 1).unwrap();
    let cfg = ServeConfig {
        watch_interval: Some(Duration::from_millis(20)),
        ..config()
    };
    let source = ModelSource::Store {
        store: store.clone(),
        tag: "ford-price@champion".into(),
    };
    let s = TestServer::start(cfg, source);
    assert_eq!(post(s.addr, "/predict", CAR).model(), "ford-price:1");
    // A newer version the alias does not name is not served.
    store.save(scaled_model(2.0), None).unwrap();
    store.save(houses_model(), None).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post(s.addr, "/predict", CAR).model(), "ford-price:1");
    // Pointing the alias at version 3 (other inputs) is refused: version 1 stays.
    store.set_alias("ford-price@champion", 3).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post(s.addr, "/predict", CAR).model(), "ford-price:1");
    // Pointing it at version 2 is followed.
    store.set_alias("ford-price@champion", 2).unwrap();
    wait_for_model(s.addr, "ford-price:2");
    // And back: an alias is followed in both directions.
    store.set_alias("ford-price@champion", 1).unwrap();
    wait_for_model(s.addr, "ford-price:1");
    drop(s);
    cleanup(&dir);
}

/// Waits until `/predict` is answered by `tag`.
fn wait_for_model(addr: std::net::SocketAddr, tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = post(addr, "/predict", CAR);
        assert_eq!(r.status, 200);
        if r.model() == tag {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the watcher did not promote {tag}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
