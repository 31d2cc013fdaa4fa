"""Small helpers of the Python harnesses of bench/ (ha_matrix, soak)."""

import socket
import urllib.error
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout):
    """(status, body); (None, "") when refused or timed out."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception:  # refused, timed out (a stopped server): unknown
        return None, ""
