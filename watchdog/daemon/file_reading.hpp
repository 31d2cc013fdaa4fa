#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pgwd::daemon {

/// What a file may be and how large, for the error messages of read_regular_file.
struct FileLimit {
  std::string_view what;         ///< "config file", "password_file": "cannot read <what> '<path>'"
  std::size_t max_bytes;         ///< the largest file read
  std::string_view max_as_text;  ///< "4 MiB": "larger than <max_as_text>, the limit for a <what>"
};

/// The content of a regular file (or a link to one) of at most limit.max_bytes. A FIFO, a device
/// or a directory is refused without reading and without blocking (opening a FIFO does not wait
/// for a writer), so that reading on SIGHUP never stalls the loop. Only readability counts: the
/// owner and the mode are not checked (a Kubernetes Secret is mounted root-owned, 0644 or 0440
/// with an fsGroup). Throws ConfigError "cannot read <what> '<path>': <strerror or file kind>"
/// or "<path>: larger than ...".
std::string read_regular_file(const std::string& path, const FileLimit& limit);

/// `text` with control characters written as escapes (\n, \t, \xNN): error messages stay on one
/// line whatever a path or value holds.
std::string escape_control_characters(std::string_view text);

}  // namespace pgwd::daemon
