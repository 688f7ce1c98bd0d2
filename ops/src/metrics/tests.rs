use super::*;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

fn get(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_histogram_counts_each_observation_in_its_bucket_and_sums_seconds() {
    let h = AtomicHistogram::new(&[0.001, 0.01]);
    h.observe(Duration::from_micros(500));
    h.observe(Duration::from_millis(1)); // on the bound: le="0.001"
    h.observe(Duration::from_millis(5));
    h.observe(Duration::from_secs(2));
    let mut r = Registry::default();
    r.register("tg_test_latency_seconds", "test", h.clone());
    let text = encode(&r);
    for want in [
        "# TYPE tg_test_latency_seconds histogram",
        "tg_test_latency_seconds_count 4",
        "tg_test_latency_seconds_sum 2.0065",
        "tg_test_latency_seconds_bucket{le=\"0.001\"} 2",
        "tg_test_latency_seconds_bucket{le=\"0.01\"} 3",
        "tg_test_latency_seconds_bucket{le=\"+Inf\"} 4",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    assert_eq!(h.count(), 4);
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn the_endpoint_serves_metrics_after_refresh_and_its_pages() {
    let mut r = Registry::default();
    let g: Gauge = Gauge::default();
    let c: Counter = Counter::default();
    r.register("tg_test_tail_bytes", "a gauge set at scrape", g.clone());
    r.register("tg_test_ships", "a counter", c.clone());
    c.inc_by(3);
    let refresh = Box::new(move || {
        g.set(4096);
    });
    let status: Page = Box::new(|| ("application/json", "{\"ok\":true}\n".to_owned()));
    let ep = Endpoint::serve("127.0.0.1:0", r, refresh, vec![("/status", status)]).unwrap();
    let resp = get(
        ep.local_addr(),
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(
        resp.contains(&format!("Content-Type: {OPENMETRICS}")),
        "{resp}"
    );
    assert!(
        resp.contains("tg_test_tail_bytes 4096"),
        "refresh did not run: {resp}"
    );
    assert!(
        resp.contains("# TYPE tg_test_ships counter\ntg_test_ships_total 3"),
        "{resp}"
    );
    assert!(resp.ends_with("# EOF\n"), "{resp}");
    // Without the Accept header: the classic format.
    let classic = get(ep.local_addr(), "GET /metrics HTTP/1.1\r\n\r\n");
    assert!(
        classic.contains(&format!("Content-Type: {CLASSIC}")),
        "{classic}"
    );
    assert!(
        classic.contains("# HELP tg_test_ships_total a counter.\n# TYPE tg_test_ships_total counter\ntg_test_ships_total 3"),
        "{classic}"
    );
    assert!(!classic.contains("# EOF"), "{classic}");
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    let len: usize = resp
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, body.len(), "Content-Length");
    let addr = ep.local_addr().to_string();
    assert_eq!(
        fetch(&addr, "/status", Duration::from_secs(5)).unwrap(),
        "{\"ok\":true}\n"
    );
    let e = fetch(&addr, "/missing", Duration::from_secs(5)).unwrap_err();
    assert!(e.contains("404"), "{e}");
    let resp = get(ep.local_addr(), "GET /status HTTP/1.0\r\n\r\n");
    assert!(resp.ends_with("\r\n\r\n{\"ok\":true}\n"), "{resp}");
    assert!(resp.contains("Content-Type: application/json"), "{resp}");
}

#[test]
fn the_classic_form_names_counters_by_their_samples_and_keeps_the_rest() {
    let om = "# HELP a_bytes A gauge.\n# TYPE a_bytes gauge\na_bytes 1\n\
              # HELP b Ships.\n# TYPE b counter\nb_total{replica=\"r0\"} 2\n\
              # HELP c_seconds Latency.\n# TYPE c_seconds histogram\nc_seconds_sum 0.5\nc_seconds_count 1\n\
              c_seconds_bucket{le=\"+Inf\"} 1\n# EOF\n";
    assert_eq!(
        to_classic(om),
        "# HELP a_bytes A gauge.\n# TYPE a_bytes gauge\na_bytes 1\n\
         # HELP b_total Ships.\n# TYPE b_total counter\nb_total{replica=\"r0\"} 2\n\
         # HELP c_seconds Latency.\n# TYPE c_seconds histogram\nc_seconds_sum 0.5\nc_seconds_count 1\n\
         c_seconds_bucket{le=\"+Inf\"} 1\n"
    );
}

#[test]
fn unknown_paths_and_methods_are_refused_and_say_what_exists() {
    let ep = Endpoint::serve("127.0.0.1:0", Registry::default(), Box::new(|| {}), vec![]).unwrap();
    let resp = get(ep.local_addr(), "GET /nope HTTP/1.1\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    assert!(resp.contains("try /metrics"), "{resp}");
    let resp = get(ep.local_addr(), "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    // A client that sends garbage without a blank line and closes leaves
    // the listener serving.
    {
        let mut s = TcpStream::connect(ep.local_addr()).unwrap();
        s.write_all(&[0xff; 100]).unwrap();
    }
    let resp = get(ep.local_addr(), "GET /metrics HTTP/1.1\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[test]
fn a_taken_address_is_an_error_naming_it() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let e = Endpoint::serve(&addr, Registry::default(), Box::new(|| {}), vec![]).unwrap_err();
    assert!(e.to_string().contains(&addr), "{e}");
}

#[test]
fn fetch_from_nothing_says_why() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let e = fetch(&addr, "/status", Duration::from_secs(2)).unwrap_err();
    assert!(e.to_lowercase().contains("refused"), "{e}");
    let e = fetch("no-such-host.invalid:1", "/status", Duration::from_secs(2)).unwrap_err();
    assert!(e.contains("does not resolve"), "{e}");
}

#[test]
fn dropping_the_endpoint_closes_its_port() {
    let ep = Endpoint::serve("127.0.0.1:0", Registry::default(), Box::new(|| {}), vec![]).unwrap();
    let addr = ep.local_addr();
    assert!(get(addr, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
    drop(ep);
    assert!(
        TcpStream::connect(addr).is_err(),
        "a dropped endpoint still accepts on {addr}"
    );
}
