//! On a real devdax device: the region maps at the device's aligned size,
//! persists with cache-line flushes, and a log on it survives reopen.

use logcore::{CreateOptions, Log, Persistence, Region, RegionKind};

const NEED: &str =
    "pmem: needs a devdax device; set TG_PMEM_DEVDAX=/dev/dax0.0 (ci/test runs it in the rxe VM)";

#[test]
#[ignore = "pmem: needs a devdax device; set TG_PMEM_DEVDAX=/dev/dax0.0 (ci/test runs it in the rxe VM)"]
fn devdax_region_maps_and_persists() {
    let dev = std::env::var("TG_PMEM_DEVDAX").unwrap_or_else(|_| panic!("{NEED}"));
    {
        let r = Region::open(&dev, RegionKind::Auto).unwrap();
        assert_eq!(r.kind(), RegionKind::DevDax);
        assert!(matches!(r.persistence(), Persistence::CacheFlush(_)));
        assert_eq!(
            r.len() % (2 << 20),
            0,
            "mapping is a multiple of the 2 MiB alignment"
        );
    }
    let opts = CreateOptions {
        kind: RegionKind::DevDax,
        overwrite: true,
        ..Default::default()
    };
    let log = Log::create(&dev, 0, &opts).unwrap();
    let mut last = None;
    for i in 0..1000u32 {
        last = Some(log.append(&i.to_le_bytes()).unwrap());
    }
    let durable = log.persist_to(last.unwrap()).unwrap();
    drop(log);
    let log = Log::open(&dev, RegionKind::DevDax).unwrap();
    assert_eq!(log.tail(), durable);
    assert_eq!(log.recovery().records, 1000);
}
