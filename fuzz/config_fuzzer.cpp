// Fuzz target: the daemon's config loader, as a file reaches it (docs/configuration.md "Limits").
//
// Properties, beyond "no crash, no hang, no unbounded memory" (libFuzzer's -timeout and
// -rss_limit_mb, see fuzz/run):
//  - parse_config throws nothing but ConfigError, whose message is one line;
//  - an accepted configuration printed by to_yaml (what --check-config prints) loads back to the
//    same configuration, DSNs as redacted.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "daemon/config.hpp"
#include "daemon/effective_config.hpp"
#include "pgwd/watchdog.hpp"

namespace {

[[noreturn]] void violated(const char* property, std::string_view detail) {
  std::fprintf(stderr, "config_fuzzer: %s\n%.*s\n", property, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pgwd::daemon;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  DaemonConfig config;
  try {
    config = parse_config(text, "fuzz.yaml");
  } catch (const ConfigError& e) {
    if (std::string_view(e.what()).find('\n') != std::string_view::npos)
      violated("an error message spans several lines", e.what());
    return 0;
  }
  const std::string printed = to_yaml(config);
  DaemonConfig reloaded;
  try {
    reloaded = parse_config(printed, "printed.yaml");
  } catch (const ConfigError& e) {
    violated("to_yaml's output does not load back", std::string(e.what()) + "\n" + printed);
  }
  for (pgwd::TargetOptions& target : config.targets)
    target.conninfo = pgwd::redact_conninfo(target.conninfo);
  if (reloaded.listen != config.listen || reloaded.log_level != config.log_level ||
      reloaded.log_format != config.log_format || reloaded.targets != config.targets)
    violated("to_yaml's output loads back to another configuration", printed);
  return 0;
}
