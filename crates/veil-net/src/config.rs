//! Channel configuration: frame-size limit and the connect, read and write timeouts.

use std::time::Duration;

/// Limits and timeouts of a [`Channel`](crate::Channel).
///
/// The defaults suit protocols on a LAN: frames up to 64 MiB, 30 s to receive or send a frame and
/// 10 s to connect. A timeout of [`Duration::MAX`] effectively disables it.
///
/// ```
/// use std::time::Duration;
/// use veil_net::ChannelConfig;
///
/// let config = ChannelConfig::default()
///     .with_max_frame(1 << 20)
///     .with_read_timeout(Duration::from_secs(5));
/// assert_eq!(config.max_frame, 1 << 20);
/// assert_eq!(config.write_timeout, ChannelConfig::DEFAULT_WRITE_TIMEOUT);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Largest payload, in bytes, of one frame (the 4-byte header is not counted). Applies to
    /// both directions: a larger frame is refused before it is written, and a larger announced
    /// length is rejected before any of its payload is read. Values above `u32::MAX` act as
    /// `u32::MAX`, the largest length the header can carry.
    pub max_frame: usize,
    /// Time allowed for one receive: from the moment pending writes have been flushed until the
    /// whole frame (header and payload) has arrived.
    pub read_timeout: Duration,
    /// Time allowed for one send (handing the frame to the transport, which may wait for the
    /// peer to drain its side), and separately for each flush and for the shutdown in
    /// [`Channel::close`](crate::Channel::close).
    pub write_timeout: Duration,
    /// Time allowed to establish a TCP connection in [`Channel::connect`](crate::Channel::connect).
    pub connect_timeout: Duration,
}

impl ChannelConfig {
    /// Default [`max_frame`](Self::max_frame): 64 MiB.
    pub const DEFAULT_MAX_FRAME: usize = 64 << 20;
    /// Default [`read_timeout`](Self::read_timeout): 30 s.
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default [`write_timeout`](Self::write_timeout): 30 s.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default [`connect_timeout`](Self::connect_timeout): 10 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Returns the configuration with [`max_frame`](Self::max_frame) set to `max_frame` bytes.
    #[must_use]
    pub const fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// Returns the configuration with [`read_timeout`](Self::read_timeout) set to `timeout`.
    #[must_use]
    pub const fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Returns the configuration with [`write_timeout`](Self::write_timeout) set to `timeout`.
    #[must_use]
    pub const fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Returns the configuration with [`connect_timeout`](Self::connect_timeout) set to `timeout`.
    #[must_use]
    pub const fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Returns the configuration with the read, write and connect timeouts all set to `timeout`.
    #[must_use]
    pub const fn with_timeouts(self, timeout: Duration) -> Self {
        self.with_read_timeout(timeout)
            .with_write_timeout(timeout)
            .with_connect_timeout(timeout)
    }

    /// The frame limit actually enforced: [`max_frame`](Self::max_frame) capped at `u32::MAX`.
    pub(crate) fn effective_max_frame(&self) -> usize {
        let header_max = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
        self.max_frame.min(header_max)
    }
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            max_frame: Self::DEFAULT_MAX_FRAME,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_documentation() {
        let c = ChannelConfig::default();
        assert_eq!(c.max_frame, 64 * 1024 * 1024);
        assert_eq!(c.read_timeout, Duration::from_secs(30));
        assert_eq!(c.write_timeout, Duration::from_secs(30));
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn builders_set_fields() {
        let d = Duration::from_millis(250);
        let c = ChannelConfig::default()
            .with_max_frame(7)
            .with_timeouts(d)
            .with_connect_timeout(Duration::from_secs(1));
        assert_eq!(c.max_frame, 7);
        assert_eq!(c.read_timeout, d);
        assert_eq!(c.write_timeout, d);
        assert_eq!(c.connect_timeout, Duration::from_secs(1));
    }

    #[test]
    fn effective_max_frame_is_capped_by_header() {
        let c = ChannelConfig::default().with_max_frame(usize::MAX);
        assert_eq!(c.effective_max_frame() as u64, u64::from(u32::MAX));
        let c = ChannelConfig::default().with_max_frame(10);
        assert_eq!(c.effective_max_frame(), 10);
    }
}
