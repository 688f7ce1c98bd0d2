//! Opening a device that does not exist gives an error a person can act on,
//! on a host without RDMA (no support) and on one with it (wrong name).

use fabric::verbs::{Context, VerbsError};

#[test]
fn a_missing_device_says_what_to_do() {
    let err = Context::open("tg-no-such-device", 1).expect_err("no such device");
    let msg = err.to_string();
    match err {
        VerbsError::NoRdma { .. } => {
            assert!(msg.contains("rdma link add"), "{msg}");
            assert!(msg.contains("ci/rxe-vm"), "{msg}");
        }
        VerbsError::DeviceNotFound { wanted, .. } => {
            assert_eq!(wanted, "tg-no-such-device");
            assert!(msg.contains("rdma link show"), "{msg}");
        }
        other => panic!("unexpected error: {other:?}"),
    }
}

#[test]
fn a_netdev_without_a_device_is_reported() {
    let err = fabric::verbs::device_for_netdev("tg-no-such-netdev").expect_err("none");
    assert!(
        err.to_string().contains("on netdev tg-no-such-netdev"),
        "{err}"
    );
}
