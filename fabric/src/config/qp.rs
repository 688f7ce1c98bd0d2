//! The `qp` section: reliable-connected queue-pair parameters.
//!
//! Its defaults are [`verbs::QpConfig::default`]'s (one source for both: a
//! program that builds a queue pair without a config gets what a config
//! without `qp` gets), widened to the config's types.

use serde::Deserialize;

use super::device::CheckedDevice;
use super::Issues;
use crate::verbs::{self, Mtu};

/// Reliable-connected queue-pair parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct QpConfig {
    /// Path MTU in bytes: 256, 512, 1024, 2048 or 4096. Default 1024 (what
    /// Soft-RoCE and a 1500-byte Ethernet MTU carry).
    #[serde(default = "default_path_mtu")]
    pub path_mtu: u32,
    /// Local ACK timeout exponent: the QP waits 4.096 µs × 2^timeout for an
    /// ACK before retrying. Default 14 (≈ 67 ms); bounds 1..=31 (0, wait
    /// forever, would hide a dead replica).
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// Transport retries after an ACK timeout before the QP errors out.
    /// Default 7; bounds 0..=7.
    #[serde(default = "default_retry")]
    pub retry_count: u32,
    /// Retries after a receiver-not-ready NAK (gpspm). Default 6; bounds
    /// 0..=6 (7 would mean retry forever).
    #[serde(default = "default_rnr_retry")]
    pub rnr_retry: u32,
    /// Minimum RNR NAK timer code for our receive queue. Default 12 (0.64 ms);
    /// bounds 1..=31.
    #[serde(default = "default_min_rnr_timer")]
    pub min_rnr_timer: u32,
    /// Send-queue depth in work requests. Default 256; bounds 1..=32768.
    #[serde(default = "default_max_send_wr")]
    pub max_send_wr: u32,
    /// Receive-queue depth in work requests (gpspm replies). Default 64;
    /// bounds 1..=32768.
    #[serde(default = "default_max_recv_wr")]
    pub max_recv_wr: u32,
    /// Largest inline send in bytes (0 disables inline). Default 64; bounds
    /// 0..=1024 (the device may allow less; QP creation then fails loudly).
    #[serde(default = "default_max_inline")]
    pub max_inline: u32,
    /// RDMA READs in flight per QP as initiator (READ flushes). Default 16;
    /// bounds 1..=255 (the device caps it, e.g. 16 on mlx5).
    #[serde(default = "default_max_rd_atomic")]
    pub max_rd_atomic: u32,
    /// Ships (the WRITEs of a log range and their READ flush) kept in
    /// flight per replica under `apm`: a committer whose record is not
    /// shipped yet posts the next ship without waiting for the ones ahead.
    /// Default 1: one ship at a time per replica, each covering everything
    /// persisted when it starts (pure group commit). Bounds 1..=8, and at
    /// most `max-rd-atomic` and `max-send-wr` / 4. More than 1 overlaps
    /// round trips, which pays where a round trip leaves the CPUs idle (a
    /// hardware NIC); on Soft-RoCE every ship costs the CPUs the appenders
    /// run on, and 4 gave fewer commits/s than 1 (measure with `tg-bench
    /// throughput`, whose commits/ship column shows the coalescing).
    #[serde(default = "default_ships_in_flight")]
    pub ships_in_flight: u32,
}

/// The verbs defaults every `default_*` below reads.
fn verbs_default() -> verbs::QpConfig {
    verbs::QpConfig::default()
}

fn mtu_bytes(mtu: Mtu) -> u32 {
    match mtu {
        Mtu::Mtu256 => 256,
        Mtu::Mtu512 => 512,
        Mtu::Mtu1024 => 1024,
        Mtu::Mtu2048 => 2048,
        Mtu::Mtu4096 => 4096,
    }
}

fn default_path_mtu() -> u32 {
    mtu_bytes(verbs_default().path_mtu)
}
fn default_timeout() -> u32 {
    verbs_default().timeout.into()
}
fn default_retry() -> u32 {
    verbs_default().retry_count.into()
}
fn default_rnr_retry() -> u32 {
    verbs_default().rnr_retry.into()
}
fn default_min_rnr_timer() -> u32 {
    verbs_default().min_rnr_timer.into()
}
fn default_max_send_wr() -> u32 {
    verbs_default().max_send_wr
}
fn default_max_recv_wr() -> u32 {
    verbs_default().max_recv_wr
}
fn default_max_inline() -> u32 {
    verbs_default().max_inline
}
fn default_max_rd_atomic() -> u32 {
    verbs_default().max_rd_atomic.into()
}
fn default_ships_in_flight() -> u32 {
    verbs_default().ships_in_flight.into()
}

impl Default for QpConfig {
    fn default() -> Self {
        QpConfig {
            path_mtu: default_path_mtu(),
            timeout: default_timeout(),
            retry_count: default_retry(),
            rnr_retry: default_rnr_retry(),
            min_rnr_timer: default_min_rnr_timer(),
            max_send_wr: default_max_send_wr(),
            max_recv_wr: default_max_recv_wr(),
            max_inline: default_max_inline(),
            max_rd_atomic: default_max_rd_atomic(),
            ships_in_flight: default_ships_in_flight(),
        }
    }
}

/// The mirror's own bound on ships in flight (a `u8` like the verbs field).
const MIRROR_MAX_IN_FLIGHT: u8 = {
    assert!(crate::mirror::MAX_IN_FLIGHT <= u8::MAX as usize);
    crate::mirror::MAX_IN_FLIGHT as u8
};

impl QpConfig {
    /// Checks every bound and, with the checked `device`, builds the verbs
    /// parameters; the result is meaningful only when no issue was pushed.
    pub(super) fn check(&self, device: CheckedDevice, v: &mut Issues) -> verbs::QpConfig {
        let path_mtu = Mtu::from_bytes(self.path_mtu);
        if path_mtu.is_none() {
            v.push(
                "qp.path-mtu",
                format!(
                    "must be one of 256, 512, 1024, 2048, 4096, got {}",
                    self.path_mtu
                ),
            );
        }
        let timeout = v.u8_in("qp.timeout", self.timeout, 1, 31);
        let retry_count = v.u8_in("qp.retry-count", self.retry_count, 0, 7);
        let rnr_retry = v.u8_in("qp.rnr-retry", self.rnr_retry, 0, 6);
        let min_rnr_timer = v.u8_in("qp.min-rnr-timer", self.min_rnr_timer, 1, 31);
        v.range("qp.max-send-wr", self.max_send_wr.into(), 1, 32768);
        v.range("qp.max-recv-wr", self.max_recv_wr.into(), 1, 32768);
        v.range("qp.max-inline", self.max_inline.into(), 0, 1024);
        let max_rd_atomic = v.u8_in("qp.max-rd-atomic", self.max_rd_atomic, 1, 255);
        let ships_in_flight = v.u8_in(
            "qp.ships-in-flight",
            self.ships_in_flight,
            1,
            MIRROR_MAX_IN_FLIGHT,
        );
        if self.ships_in_flight > self.max_rd_atomic {
            v.push(
                "qp.ships-in-flight",
                format!(
                    "{} ships need as many READ flushes in flight, but qp.max-rd-atomic is {}: \
                     lower ships-in-flight or raise max-rd-atomic",
                    self.ships_in_flight, self.max_rd_atomic
                ),
            );
        }
        if u64::from(self.ships_in_flight) * 4 > u64::from(self.max_send_wr) {
            v.push(
                "qp.ships-in-flight",
                format!(
                    "{} ships take up to {} send-queue entries, but qp.max-send-wr is {}: \
                     lower ships-in-flight or raise max-send-wr",
                    self.ships_in_flight,
                    self.ships_in_flight * 4,
                    self.max_send_wr
                ),
            );
        }
        let defaults = verbs_default();
        verbs::QpConfig {
            path_mtu: path_mtu.unwrap_or(defaults.path_mtu),
            timeout,
            retry_count,
            rnr_retry,
            min_rnr_timer,
            max_rd_atomic,
            ships_in_flight,
            max_send_wr: self.max_send_wr,
            max_recv_wr: self.max_recv_wr,
            max_inline: self.max_inline,
            gid_index: device.gid_index,
            traffic_class: device.traffic_class.unwrap_or(defaults.traffic_class),
            service_level: device.service_level,
            hop_limit: device.hop_limit.unwrap_or(defaults.hop_limit),
        }
    }
}
