//! Loopback helpers: two connected TCP channels in one process, for tests and benchmarks that
//! want real sockets.

use tokio::net::{TcpListener, TcpStream};

use crate::{Channel, ChannelConfig, Link, LinkProfile, NetError};

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
    pair(config, None).await.map(|(a, b, _)| (a, b))
}

/// Two channels connected over loopback TCP through an emulated link of `profile`
/// ([`Link`]): the connecting side's frames take the link's upstream direction. The link runs
/// while the returned [`Link`] lives (connections already made run on after it is dropped).
///
/// # Errors
///
/// As [`tcp_pair`].
pub async fn linked_tcp_pair(
    config: ChannelConfig,
    profile: LinkProfile,
) -> Result<(Channel, Channel, Link), NetError> {
    let (a, b, link) = pair(config, Some(profile)).await?;
    Ok((a, b, link.expect("a link was asked for")))
}

async fn pair(
    config: ChannelConfig,
    profile: Option<LinkProfile>,
) -> Result<(Channel, Channel, Option<Link>), NetError> {
    let limit = config.connect_timeout;
    let pair = async {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let link = match profile {
            Some(p) => Some(Link::start(
                "127.0.0.1:0".parse().expect("an address"),
                addr,
                p,
            )?),
            None => None,
        };
        let front = link.as_ref().map_or(addr, Link::addr);
        let (client, accepted) = tokio::try_join!(TcpStream::connect(front), listener.accept())?;
        Ok::<_, std::io::Error>((client, accepted.0, link))
    };
    let (client, server, link) = match tokio::time::timeout(limit, pair).await {
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
        link,
    ))
}
