#include "daemon/file_reading.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "daemon/config.hpp"
#include "os/unique_fd.hpp"

namespace pgwd::daemon {
namespace {

std::string file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

}  // namespace

std::string escape_control_characters(std::string_view text) {
  std::string escaped;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      escaped += "\\n";
    } else if (c == '\t') {
      escaped += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      constexpr std::string_view kHex = "0123456789abcdef";
      escaped += "\\x";
      escaped += kHex[byte >> 4];
      escaped += kHex[byte & 0xf];
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string read_regular_file(const std::string& path, const FileLimit& limit) {
  const std::string shown = escape_control_characters(path);
  const auto cannot_read = [&](const std::string& reason) {
    return ConfigError("cannot read " + std::string(limit.what) + " '" + shown + "': " + reason);
  };
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
  const UniqueFd file(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  const int fd = file.get();
  if (fd < 0) throw cannot_read(std::strerror(errno));
  struct stat status {};
  if (::fstat(fd, &status) != 0) throw cannot_read(std::strerror(errno));
  if (S_ISDIR(status.st_mode)) throw cannot_read(std::strerror(EISDIR));
  if (!S_ISREG(status.st_mode))
    throw cannot_read("not a regular file (" + file_kind(status.st_mode) + ")");
  const auto too_large = [&] {
    return ConfigError(shown + ": larger than " + std::string(limit.max_as_text) +
                       ", the limit for a " + std::string(limit.what));
  };
  if (static_cast<std::uintmax_t>(status.st_size) > limit.max_bytes) throw too_large();
  // Read at most one byte past the limit: the file may have grown since fstat.
  std::string text(limit.max_bytes + 1, '\0');
  std::size_t length = 0;
  while (length < text.size()) {
    const ssize_t got = ::read(fd, text.data() + length, text.size() - length);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw cannot_read(std::strerror(errno));
    if (got == 0) break;
    length += static_cast<std::size_t>(got);
  }
  if (length > limit.max_bytes) throw too_large();
  text.resize(length);
  return text;
}

}  // namespace pgwd::daemon
