//! Loopback helpers: two connected TCP channels in one process, for tests and benchmarks that
//! want real sockets.

use tokio::net::{TcpListener, TcpStream};

use crate::{Channel, ChannelConfig, NetError};

/// Two channels connected over a fresh TCP connection on `127.0.0.1`.
///
/// Binds an ephemeral port, connects to it and accepts, all within
/// [`connect_timeout`](ChannelConfig::connect_timeout). Returns `(connecting side, accepting
/// side)`; both use `config`.
///
/// # Errors
///
/// [`NetError::Io`] if binding, connecting or accepting fails, [`NetError::Timeout`] with
/// `op == "connect"` if it takes too long.
pub async fn tcp_pair(config: ChannelConfig) -> Result<(Channel, Channel), NetError> {
    let limit = config.connect_timeout;
    let pair = async {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (client, accepted) = tokio::try_join!(TcpStream::connect(addr), listener.accept())?;
        Ok::<_, std::io::Error>((client, accepted.0))
    };
    let (client, server) = match tokio::time::timeout(limit, pair).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(NetError::Timeout {
                op: "connect",
                after: limit,
            })
        }
    };
    Ok((
        Channel::from_tcp(client, config),
        Channel::from_tcp(server, config),
    ))
}
