//! The parameters a queue pair is created and connected with.

/// Path MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mtu {
    /// 256 bytes.
    Mtu256 = 1,
    /// 512 bytes.
    Mtu512 = 2,
    /// 1024 bytes.
    Mtu1024 = 3,
    /// 2048 bytes.
    Mtu2048 = 4,
    /// 4096 bytes.
    Mtu4096 = 5,
}

impl Mtu {
    /// The MTU for a byte count (256, 512, 1024, 2048, 4096).
    pub fn from_bytes(bytes: u32) -> Option<Mtu> {
        Some(match bytes {
            256 => Mtu::Mtu256,
            512 => Mtu::Mtu512,
            1024 => Mtu::Mtu1024,
            2048 => Mtu::Mtu2048,
            4096 => Mtu::Mtu4096,
            _ => return None,
        })
    }

    /// The MTU for an `ibv_mtu` code (what a port reports); 4096 for a code
    /// past the known ones.
    pub(super) fn from_code(code: u32) -> Mtu {
        match code {
            1 => Mtu::Mtu256,
            2 => Mtu::Mtu512,
            3 => Mtu::Mtu1024,
            4 => Mtu::Mtu2048,
            _ => Mtu::Mtu4096,
        }
    }
}

/// Queue pair parameters (the `qp` and `device` sections of a config).
///
/// [`QpConfig::default`] is the single source of the defaults: the YAML
/// config's `qp` section has the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QpConfig {
    /// Upper bound on the path MTU; the port's active MTU caps it. Default
    /// 1024 (what Soft-RoCE and a 1500-byte Ethernet MTU carry).
    pub path_mtu: Mtu,
    /// Local ACK timeout exponent: 4.096 µs × 2^timeout. Default 14
    /// (≈ 67 ms).
    pub timeout: u8,
    /// Transport retries before the QP errors (0..=7). Default 7.
    pub retry_count: u8,
    /// RNR retries (0..=7, where 7 means retry forever). Default 6: bounded,
    /// so a peer that stops posting receives errors the QP instead of
    /// stalling it.
    pub rnr_retry: u8,
    /// RNR NAK timer code advertised to the peer. Default 12 (0.64 ms).
    pub min_rnr_timer: u8,
    /// Outstanding RDMA READs this side may issue (capped by the device).
    /// Default 16.
    pub max_rd_atomic: u8,
    /// Ships (WRITEs + READ flush) a mirror keeps in flight on this QP
    /// (1 = one at a time; see `qp.ships-in-flight`). Default 1.
    pub ships_in_flight: u8,
    /// Send queue depth. Default 256.
    pub max_send_wr: u32,
    /// Receive queue depth. Default 64.
    pub max_recv_wr: u32,
    /// Largest WRITE sent inline (copied at post time, no DMA of the
    /// source). Default 64.
    pub max_inline: u32,
    /// GID index to route with; `None` (the default) picks one (RoCE v2
    /// IPv4-mapped on Ethernet, LID routing on InfiniBand).
    pub gid_index: Option<u32>,
    /// Traffic class of the GRH (RoCE: DSCP << 2 | ECN). Default 0.
    pub traffic_class: u8,
    /// Service level. Default 0.
    pub service_level: u8,
    /// GRH hop limit. Default 64.
    pub hop_limit: u8,
}

impl Default for QpConfig {
    fn default() -> Self {
        QpConfig {
            path_mtu: Mtu::Mtu1024,
            timeout: 14,
            retry_count: 7,
            rnr_retry: 6,
            min_rnr_timer: 12,
            max_rd_atomic: 16,
            ships_in_flight: 1,
            max_send_wr: 256,
            max_recv_wr: 64,
            max_inline: 64,
            gid_index: None,
            traffic_class: 0,
            service_level: 0,
            hop_limit: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_retries_rnr_a_bounded_number_of_times() {
        // 7 would retry forever: a stalled peer would hang the QP.
        assert!(QpConfig::default().rnr_retry < 7);
    }

    #[test]
    fn the_yaml_config_has_the_same_defaults() {
        let v = QpConfig::default();
        let y = crate::config::QpConfig::default();
        assert_eq!(Mtu::from_bytes(y.path_mtu), Some(v.path_mtu));
        assert_eq!(y.timeout, u32::from(v.timeout));
        assert_eq!(y.retry_count, u32::from(v.retry_count));
        assert_eq!(y.rnr_retry, u32::from(v.rnr_retry));
        assert_eq!(y.min_rnr_timer, u32::from(v.min_rnr_timer));
        assert_eq!(y.max_rd_atomic, u32::from(v.max_rd_atomic));
        assert_eq!(y.ships_in_flight, u32::from(v.ships_in_flight));
        assert_eq!(y.max_send_wr, v.max_send_wr);
        assert_eq!(y.max_recv_wr, v.max_recv_wr);
        assert_eq!(y.max_inline, v.max_inline);
    }

    #[test]
    fn mtu_codes_and_byte_counts_agree() {
        for bytes in [256, 512, 1024, 2048, 4096] {
            let mtu = Mtu::from_bytes(bytes).unwrap();
            assert_eq!(Mtu::from_code(mtu as u32), mtu);
        }
        assert_eq!(Mtu::from_bytes(1000), None);
    }
}
