// Fuzz target: the parsers of single values, the first byte choosing which one.
//   0: durations (parse_duration, then format_duration reads back the same duration)
//   1: DSNs (pgwd::validate throws nothing but InvalidTarget; redact_conninfo never throws, and an
//      accepted DSN stays accepted once redacted, as --check-config prints it)
//   2: listen addresses (check_listen_address throws nothing but ConfigError)
//   3: target names (an accepted name is valid UTF-8 without control characters)
//   4: yaml_quoted (reads back as the same string through yaml-cpp)
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "daemon/config.hpp"
#include "daemon/duration.hpp"
#include "daemon/listen_address.hpp"
#include "daemon/yaml_document.hpp"
#include "pgwd/watchdog.hpp"

namespace {

[[noreturn]] void violated(const char* property, std::string_view detail) {
  std::fprintf(stderr, "value_fuzzer: %s\n%.*s\n", property, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void fuzz_duration(std::string_view text) {
  using pgwd::daemon::format_duration;
  using pgwd::daemon::parse_duration;
  std::chrono::milliseconds duration{};
  try {
    duration = parse_duration(text);
  } catch (const std::invalid_argument&) {
    return;
  } catch (const std::out_of_range&) {
    return;
  }
  const std::string formatted = format_duration(duration);
  if (parse_duration(formatted) != duration) violated("format_duration does not read back", text);
}

pgwd::TargetOptions target_with(std::string name, std::string conninfo) {
  pgwd::TargetOptions target;
  target.name = std::move(name);
  target.conninfo = std::move(conninfo);
  return target;
}

void fuzz_dsn(std::string_view text) {
  const std::string redacted = pgwd::redact_conninfo(text);
  try {
    pgwd::validate(target_with("fuzz", std::string(text)));
  } catch (const pgwd::InvalidTarget&) {
    return;
  }
  try {
    pgwd::validate(target_with("fuzz", redacted));
  } catch (const pgwd::InvalidTarget& e) {
    violated("an accepted DSN is refused once redacted", std::string(e.what()) + "\n" + redacted);
  }
}

void fuzz_listen(std::string_view text) {
  try {
    pgwd::daemon::check_listen_address(text);
  } catch (const pgwd::daemon::ConfigError&) {
  }
}

void fuzz_name(std::string_view text) {
  try {
    pgwd::validate(target_with(std::string(text), ""));
  } catch (const pgwd::InvalidTarget& e) {
    if (std::string_view(e.what()).find('\n') != std::string_view::npos)
      violated("an error message spans several lines", e.what());
    return;
  }
  if (pgwd::daemon::find_invalid_utf8(text)) violated("a name that is not UTF-8 passed", text);
  for (char c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      violated("a name with a control character passed", text);
}

void fuzz_quoting(std::string_view text) {
  if (pgwd::daemon::find_invalid_utf8(text)) return;  // yaml_quoted's contract: UTF-8 in
  const std::string quoted = pgwd::daemon::yaml_quoted(text);
  std::string read_back;
  try {
    read_back = YAML::Load(quoted).Scalar();
  } catch (const YAML::Exception& e) {
    violated("yaml_quoted's output is not YAML", quoted);
  }
  if (read_back != text) violated("yaml_quoted does not read back", quoted);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0:
      fuzz_duration(text);
      break;
    case 1:
      fuzz_dsn(text);
      break;
    case 2:
      fuzz_listen(text);
      break;
    case 3:
      fuzz_name(text);
      break;
    default:
      fuzz_quoting(text);
      break;
  }
  return 0;
}
