#pragma once

namespace pgwd {

/// The error the kernel holds for a socket (ETIMEDOUT after keepalive or TCP_USER_TIMEOUT gave
/// up, ECONNRESET, ...), read with a 1-byte MSG_PEEK that consumes no data; 0 if none. Called
/// before libpq reads: libpq turns these into translated text, and once read the error is gone.
int pending_socket_error(int fd) noexcept;

}  // namespace pgwd
